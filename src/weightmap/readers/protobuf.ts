/**
 * A protobuf wire-format cursor for the hand-written ONNX decoders (readers/onnx.ts). Every length
 * and varint is bounds-checked against its enclosing message, so a truncated or lying file fails
 * through `fail` (an InputError naming the file), never with a RangeError or an endless loop.
 */
import { InputError } from '../../errors.ts';

export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

export type Fail = (message: string, details?: { tensor?: string; expected?: string; actual?: string }) => never;

/** A cursor over one protobuf message: [pos, end) of `buf`. */
export class Wire {
  constructor(readonly buf: Uint8Array, public pos: number, readonly end: number, readonly fail: Fail) {}

  more(): boolean {
    return this.pos < this.end;
  }

  /** 64-bit varint as unsigned [lo, hi] words. */
  varint64(): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint', { expected: 'more bytes', actual: `end of message at byte ${this.end}` });
      const b = this.buf[this.pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (!(b & 0x80)) return [lo >>> 0, hi >>> 0];
    }
    return this.fail('varint longer than 10 bytes', { expected: '≤ 10 bytes', actual: `more at byte ${this.pos}` });
  }

  /** A varint used as a count, length or tag: must be exact as a JS number. */
  uint(): number {
    const [lo, hi] = this.varint64();
    if (hi >= 0x200000) this.fail('varint too large', { expected: `≤ ${Number.MAX_SAFE_INTEGER}`, actual: `≥ 2^53 at byte ${this.pos}` });
    return hi * 4294967296 + lo;
  }

  tag(): { field: number; wire: number } {
    const at = this.pos;
    const tag = this.uint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0 || ![VARINT, FIXED64, LEN, FIXED32].includes(wire)) {
      this.fail('invalid protobuf tag', { expected: 'field ≥ 1, wire type 0/1/2/5', actual: `field ${field} wire ${wire} at byte ${at}` });
    }
    return { field, wire };
  }

  /** A length-delimited field's bytes as a sub-range; the length must fit in this message. */
  lengthDelimited(): { start: number; end: number } {
    const len = this.uint();
    if (len > this.end - this.pos) {
      this.fail('length runs past the end of its message (truncated?)', { expected: `≤ ${this.end - this.pos} bytes`, actual: `${len} bytes at byte ${this.pos}` });
    }
    const start = this.pos;
    this.pos += len;
    return { start, end: this.pos };
  }

  sub(): Wire {
    const { start, end } = this.lengthDelimited();
    return new Wire(this.buf, start, end, this.fail);
  }

  bytes(): Uint8Array {
    const { start, end } = this.lengthDelimited();
    return this.buf.subarray(start, end);
  }

  string(): string {
    try {
      return utf8.decode(this.bytes());
    } catch (cause) {
      if (cause instanceof InputError) throw cause;
      return this.fail('string field is not valid UTF-8', { actual: `near byte ${this.pos}` });
    }
  }

  fixed(n: 4 | 8): Uint8Array {
    if (this.end - this.pos < n) this.fail('truncated fixed-width field', { expected: `${n} bytes`, actual: `${this.end - this.pos} bytes` });
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint64();
    else if (wire === FIXED64) this.fixed(8);
    else if (wire === LEN) this.lengthDelimited();
    else this.fixed(4);
  }

  /** Repeated varint field: packed (one LEN field) or not (one VARINT per value); both are legal. */
  repeatedVarint(wire: number, out: Array<[number, number]>): void {
    if (wire === VARINT) out.push(this.varint64());
    else if (wire === LEN) {
      const packed = this.sub();
      while (packed.more()) out.push(packed.varint64());
    } else this.wrongWire(wire, 'varint or packed');
  }

  /** Repeated fixed-width field: the packed form is already little-endian bytes. */
  repeatedFixed(wire: number, width: 4 | 8, out: Uint8Array[]): void {
    if (wire === (width === 4 ? FIXED32 : FIXED64)) out.push(this.fixed(width));
    else if (wire === LEN) {
      const bytes = this.bytes();
      if (bytes.byteLength % width) this.fail('packed field length is not a multiple of its element size', { expected: `multiple of ${width}`, actual: `${bytes.byteLength} bytes` });
      out.push(bytes);
    } else this.wrongWire(wire, `fixed${width * 8} or packed`);
  }

  expect(wire: number, expected: number, what: string): void {
    if (wire !== expected) this.wrongWire(wire, what);
  }

  wrongWire(wire: number, expected: string): never {
    return this.fail('field has the wrong wire type', { expected, actual: `wire type ${wire} before byte ${this.pos}` });
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
