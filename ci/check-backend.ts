/**
 * `npx tsx ci/check-backend.ts <backend>`: proves right after installing that a backend loads and
 * computes, so a native package whose install script failed (npm still exits 0 and leaves the
 * package out) stops the job here with the reason, instead of an hour later as exit 2 in align.
 * Selects the backend by name exactly as align does (no fallback), multiplies a 2×2 matrix by
 * itself and compares with the product worked out by hand.
 * Exit: 0 it works, 2 it cannot load (the reason is printed), 1 it loads but computes wrongly.
 */
import { selectBackend } from '../src/backend/select.ts';
import { tf } from '../src/backend/tf.ts';
import { InputError, exitCodeOf } from '../src/errors.ts';

// [[1, 2], [3, 4]]² = [[1·1 + 2·3, 1·2 + 2·4], [3·1 + 4·3, 3·2 + 4·4]]
const EXPECTED = [7, 10, 15, 22];

async function main(name: string | undefined): Promise<number> {
  if (!name) throw new InputError('usage: npx tsx ci/check-backend.ts <backend>', { expected: 'a backend name', actual: 'none' });
  const backend = await selectBackend(name);
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]); // [2, 2]
  const y = tf.matMul(x, x); // [2, 2]
  const got = Array.from(await y.data());
  tf.dispose([x, y]);
  // Small integers: every float32 backend computes them exactly.
  if (got.some((v, i) => v !== EXPECTED[i])) {
    console.error(`backend ${backend.name} loads but computes [[1,2],[3,4]]² as ${JSON.stringify(got)}, not ${JSON.stringify(EXPECTED)}`);
    return 1;
  }
  console.log(`backend ${backend.name} (tfjs "${backend.tfjsName}") loads and computes`);
  return 0;
}

main(process.argv[2]).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof InputError ? `parity check-backend: ${error.message}` : error);
    process.exitCode = exitCodeOf(error);
  },
);
