/** T5 relative position buckets against the bucket boundaries HF's function yields (FORMATS.md §2). */
import { describe, expect, it } from 'vitest';
import { relativePositionBucket } from '../../src/layers/relative-position.ts';
import { shiftRight } from '../../src/models/t5.ts';
import { tf } from '../../src/backend/tf.ts';

/** First n at which each bucket starts, scanning n = 0, 1, 2, … */
function bucketStarts(bucketOf: (n: number) => number, upTo: number): Map<number, number> {
  const starts = new Map<number, number>();
  for (let n = 0; n <= upTo; n++) if (!starts.has(bucketOf(n))) starts.set(bucketOf(n), n);
  return starts;
}

describe('relativePositionBucket (32 buckets, max distance 128)', () => {
  const enc = { buckets: 32, maxDistance: 128, bidirectional: true };
  const dec = { buckets: 32, maxDistance: 128, bidirectional: false };

  it('encoder (bidirectional): exact below 8, then buckets 8…15 start at 8, 12, 16, 23, 32, 46, 64, 91; +16 when the key is after the query', () => {
    const before = bucketStarts((n) => relativePositionBucket(-n, enc), 600);
    const after = bucketStarts((n) => relativePositionBucket(n, enc), 600);
    const expected = [8, 12, 16, 23, 32, 46, 64, 91];
    expected.forEach((n, i) => {
      expect(before.get(8 + i)).toBe(n);
      expect(after.get(24 + i)).toBe(n);
    });
    for (let n = 1; n < 8; n++) {
      expect(relativePositionBucket(-n, enc)).toBe(n);
      expect(relativePositionBucket(n, enc)).toBe(16 + n);
    }
    expect(relativePositionBucket(-600, enc)).toBe(15);
  });

  it('decoder (causal): future keys share bucket 0; buckets 16…31 start at 16, 19, 21, 24, 27, 31, 35, 40, 46, 52, 59, 67, 77, 87, 99, 113', () => {
    const starts = bucketStarts((n) => relativePositionBucket(-n, dec), 600);
    [16, 19, 21, 24, 27, 31, 35, 40, 46, 52, 59, 67, 77, 87, 99, 113].forEach((n, i) => expect(starts.get(16 + i)).toBe(n));
    expect(relativePositionBucket(5, dec)).toBe(0);
    expect(relativePositionBucket(-600, dec)).toBe(31);
  });
});

describe('shiftRight', () => {
  it('prepends the start token, drops the last label, and turns −100 into the pad id', () => {
    const out = tf.tidy(() => Array.from(shiftRight(tf.tensor2d([[7, 8, -100, -100], [3, 4, 5, 6]], [2, 4], 'int32'), 0, 0).dataSync()));
    expect(out).toEqual([0, 7, 8, 0, 0, 3, 4, 5]);
  });
});
