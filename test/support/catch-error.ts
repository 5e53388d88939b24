/** The error `fn` throws, so a test can inspect it; fails the test when nothing is thrown. */
export function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

/** The error `fn` throws or rejects with; fails the test when it settles without one. */
export async function catchErrorAsync(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}
