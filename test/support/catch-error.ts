/** The error `fn` throws, so a test can inspect it; fails the test when nothing is thrown. */
export function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}
