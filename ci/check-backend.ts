/**
 * `npx tsx ci/check-backend.ts <backend> [--hardware]`: proves right after installing that a
 * backend loads and computes, so a native package whose install script failed (npm still exits 0
 * and leaves the package out) stops the job here with the reason, instead of an hour later as
 * exit 2 in align. Selects the backend by name exactly as align does (no fallback), multiplies a
 * 2×2 matrix by itself and compares with the product worked out by hand. `--hardware` (the GPU
 * legs) also refuses a software GPU adapter (Mesa's llvmpipe): a GPU row computed by the CPU would
 * pass for a GPU result.
 * Exit: 0 it works, 2 it cannot load or is not on the hardware asked for (the reason is printed),
 * 1 it loads but computes wrongly.
 */
import { selectBackend } from '../src/backend/select.ts';
import { tf } from '../src/backend/tf.ts';
import { describeAdapterLine } from '../src/backend/webgpu.ts';
import { InputError, exitCodeOf } from '../src/errors.ts';

// [[1, 2], [3, 4]]² = [[1·1 + 2·3, 1·2 + 2·4], [3·1 + 4·3, 3·2 + 4·4]]
const EXPECTED = [7, 10, 15, 22];
const USAGE = 'usage: npx tsx ci/check-backend.ts <backend> [--hardware]';

async function main(args: string[]): Promise<number> {
  const hardware = args.includes('--hardware');
  const names = args.filter((a) => a !== '--hardware');
  if (names.length !== 1 || names[0].startsWith('-')) throw new InputError(USAGE, { expected: 'one backend name', actual: args.join(' ') || 'none' });
  const backend = await selectBackend(names[0]);
  const on = backend.adapter ? ` on ${describeAdapterLine(backend.adapter)}` : '';
  if (hardware && backend.adapter?.software) {
    throw new InputError(`backend ${backend.name} runs${on}, a CPU posing as a GPU: install the GPU vendor's Vulkan driver (ci/README.md, "The GPU runner")`, {
      expected: 'a hardware adapter',
      actual: describeAdapterLine(backend.adapter),
    });
  }
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]); // [2, 2]
  const y = tf.matMul(x, x); // [2, 2]
  const got = Array.from(await y.data());
  tf.dispose([x, y]);
  // Small integers: every float32 backend computes them exactly.
  if (got.some((v, i) => v !== EXPECTED[i])) {
    console.error(`backend ${backend.name}${on} loads but computes [[1,2],[3,4]]² as ${JSON.stringify(got)}, not ${JSON.stringify(EXPECTED)}`);
    return 1;
  }
  console.log(`backend ${backend.name} (tfjs "${backend.tfjsName}")${on} loads and computes`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof InputError ? `parity check-backend: ${error.message}` : error);
    process.exitCode = exitCodeOf(error);
  },
);
