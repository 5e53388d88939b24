/**
 * Zip access to torch files. Oracles: the published CRC-32 check value, facts of the torch layout
 * (FORMATS.md §4: one folder, 64-byte aligned data, `version` = "3\n", data.pkl a protocol-2
 * pickle), and the fixture's safetensors twin: every storage of a state dict without views is
 * exactly one unique tensor, so the storage record sizes must be the safetensors byte sizes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { bufferSource, crc32, openByteSource, readEntry, readZip } from '../../../src/weightmap/readers/zip.ts';
import { f32, OrderedDict, writeTorchZip, writeZip } from './torch-writer.ts';
import { catchError } from '../../support/catch-error.ts';

const BASELINES = join(import.meta.dirname, '../../../baselines');
const tmp = mkdtempSync(join(tmpdir(), 'parity-zip-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Independent of the readers: byte sizes of a safetensors file's tensors. */
function safetensorsSizes(path: string): number[] {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  return Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([, e]) => e.data_offsets[1] - e.data_offsets[0]);
}

describe('crc32', () => {
  it('gives the standard check value for "123456789"', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
  it('is 0 for no bytes', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe.each(['bert', 'gpt2', 't5', 't5v11'])('readZip on baselines/%s/pytorch_model.bin', (model) => {
  const path = join(BASELINES, model, 'pytorch_model.bin');
  const zip = readZip(openByteSource(path));

  it('takes the folder name from the first entry (the file basename for torch.save to a path)', () => {
    expect(zip.top).toBe('pytorch_model');
    expect([...zip.entries.keys()].every((n) => n.startsWith('pytorch_model/'))).toBe(true);
  });

  it('finds data.pkl (a protocol-2 pickle ending in STOP) and version "3\\n"', () => {
    const pkl = readEntry(zip, zip.entries.get('pytorch_model/data.pkl')!);
    expect([pkl[0], pkl[1], pkl[pkl.length - 1]]).toEqual([0x80, 0x02, 0x2e]);
    expect(new TextDecoder().decode(readEntry(zip, zip.entries.get('pytorch_model/version')!))).toBe('3\n');
  });

  it('puts every record on a 64-byte boundary (local extra field, not the central directory)', () => {
    for (const e of zip.entries.values()) expect(e.dataOffset % 64).toBe(0);
  });

  it('has one storage record per unique tensor, sized as in model.safetensors', () => {
    const storages = [...zip.entries.values()].filter((e) => e.name.startsWith('pytorch_model/data/'));
    const sizes = storages.map((e) => e.size).sort((a, b) => a - b);
    expect(sizes).toEqual(safetensorsSizes(join(BASELINES, model, 'model.safetensors')).sort((a, b) => a - b));
  });

  it('checks each record against its CRC', () => {
    for (const e of zip.entries.values()) expect(() => readEntry(zip, e)).not.toThrow();
  });
});

describe('readZip on written archives', () => {
  const entries = [
    { name: 'my model-v2/data.pkl', data: new Uint8Array([1, 2, 3]) },
    { name: 'my model-v2/data/0', data: new Uint8Array(100).fill(7) },
    { name: 'my model-v2/version', data: new TextEncoder().encode('3\n') },
  ];

  it('reads any folder name', () => {
    const p = join(tmp, 'named.zip');
    writeZip(p, entries);
    const zip = readZip(openByteSource(p));
    expect(zip.top).toBe('my model-v2');
    expect([...readEntry(zip, zip.entries.get('my model-v2/data/0')!)]).toEqual(new Array(100).fill(7));
  });

  it('reads sizes and offsets from ZIP64 extra fields when the 32-bit fields are saturated', () => {
    const p = join(tmp, 'zip64.zip');
    writeZip(p, entries, { zip64Extra: true });
    const bytes = readFileSync(p);
    // The central directory really does say 0xffffffff for the first entry's local offset.
    const cd = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    expect(bytes.readUInt32LE(cd + 42)).toBe(0xffffffff);
    const zip = readZip(openByteSource(p));
    expect(zip.entries.get('my model-v2/data.pkl')!.size).toBe(3);
    expect([...readEntry(zip, zip.entries.get('my model-v2/data.pkl')!)]).toEqual([1, 2, 3]);
  });

  it('finds the end record behind an archive comment', () => {
    const p = join(tmp, 'comment.zip');
    writeZip(p, entries);
    const bytes = readFileSync(p);
    const comment = Buffer.from('a comment that is not a signature');
    const withComment = Buffer.concat([bytes, comment]);
    withComment.writeUInt16LE(comment.length, bytes.length - 2);
    const zip = readZip(bufferSource('comment.zip', withComment));
    expect(zip.entries.size).toBe(3);
  });

  it('reads the same bytes when the file is read per record instead of whole', () => {
    const p = join(tmp, 'state.bin');
    writeTorchZip(p, new OrderedDict([['w', f32([1, 2, 3, 4], [2, 2])]]), { top: 'state' });
    const whole = readZip(openByteSource(p));
    const lazy = readZip(openByteSource(p, 0));
    expect(lazy.source.inMemory).toBe(false);
    for (const [name, e] of whole.entries) {
      expect(lazy.entries.get(name)).toEqual(e);
      expect(readEntry(lazy, lazy.entries.get(name)!)).toEqual(readEntry(whole, e));
    }
  });

  it('refuses a compressed entry, naming the file and the method', () => {
    const p = join(tmp, 'deflated.zip');
    writeZip(p, entries);
    const bytes = readFileSync(p);
    const cd = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes.writeUInt16LE(8, cd + 10); // method 8 = deflate
    writeFileSync(p, bytes);
    const err = catchError(() => readZip(openByteSource(p)));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toContain(p);
    expect(err.message).toContain('method 8');
  });

  it('refuses a folder given as a file', () => {
    expect(() => openByteSource(tmp)).toThrow(InputError);
  });
});
