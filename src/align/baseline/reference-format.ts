/** The source formats `baseline import` reads; shared by the manifest and the reference files. */
export const IMPORT_FORMATS = ['megatron-golden', 'megatron-log', 'hf-trainer-state', 'csv', 'txt'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** Names of imported references: they become file names under `references/`. */
export const REFERENCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
