/**
 * Hostile and damaged safetensors files, generated from a real one (bert model.safetensors):
 * each must be refused with an InputError that names the file (and the tensor, where one is at
 * fault) — never accepted, never a RangeError/SyntaxError, never a hang.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { readSafetensors } from '../../../src/weightmap/readers/safetensors.ts';

const SOURCE = join(import.meta.dirname, '../../../baselines/bert/model.safetensors');
const ORIG = readFileSync(SOURCE);
const N = Number(ORIG.readBigUInt64LE(0));
const HEADER_TEXT = ORIG.subarray(8, 8 + N).toString('utf8');
const HEADER = JSON.parse(HEADER_TEXT) as Record<string, any>;
const DATA = ORIG.subarray(8 + N);
/** Tensor names in file order (by begin offset). */
const ORDER = Object.keys(HEADER).filter((k) => k !== '__metadata__').sort((a, b) => HEADER[a].data_offsets[0] - HEADER[b].data_offsets[0]);
const WORD = 'bert.embeddings.word_embeddings.weight';
const SMALL = 'cls.seq_relationship.bias'; // F32 [2]: 8 bytes

const tmp = mkdtempSync(join(tmpdir(), 'parity-bad-st-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function withLength(n: bigint, rest: Uint8Array = ORIG.subarray(8)): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(n);
  return Buffer.concat([prefix, rest]);
}

function withHeaderText(text: string | Uint8Array, data: Uint8Array = DATA): Buffer {
  const body = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
  return withLength(BigInt(body.byteLength), Buffer.concat([body, data]));
}

/** The real header, edited as an object; the data bytes stay the original ones unless given. */
function withHeader(edit: (h: Record<string, any>) => void, data: Uint8Array = DATA): Buffer {
  const h = structuredClone(HEADER);
  edit(h);
  return withHeaderText(JSON.stringify(h), data);
}

function shiftFrom(h: Record<string, any>, from: number, by: number): void {
  for (const name of ORDER.slice(from)) h[name].data_offsets = h[name].data_offsets.map((o: number) => o + by);
}

function flipBit(buf: Buffer, at: number, bit: number): Buffer {
  const copy = Buffer.from(buf);
  copy[at] ^= 1 << bit;
  return copy;
}

/** Header character positions where any single bit flip must break the file (not tensor names or metadata values). */
function flipCandidates(text: string): number[] {
  const out: number[] = [];
  const structural = new Set(['dtype', 'shape', 'data_offsets', '__metadata__', 'F32', 'I64']);
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '"') {
      out.push(i);
      continue;
    }
    const end = text.indexOf('"', i + 1);
    if (structural.has(text.slice(i + 1, end))) for (let j = i; j <= end; j++) out.push(j);
    i = end;
  }
  return out;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Case = [label: string, bytes: Buffer, tensor?: string];

const truncations: Case[] = [0, 1, 4, 7, 8, 9, 16, 100, 8 + N - 1, 8 + N, 8 + N + 1, 8 + N + 100, ORIG.length >> 1, ORIG.length - 4, ORIG.length - 1]
  .map((len) => [`truncated to ${len} bytes`, ORIG.subarray(0, len)]);

const lengths: Case[] = [
  ['header length = file size', withLength(BigInt(ORIG.length))],
  ['header length one past the file', withLength(BigInt(ORIG.length - 7))],
  ['header length 100,000,001', withLength(100_000_001n)],
  ['header length 2^53', withLength(2n ** 53n)],
  ['header length 2^64 - 1', withLength(2n ** 64n - 1n)],
  ['header length 0', withLength(0n)],
  ['header length one short', withLength(BigInt(N - 1))],
  ['header length one long', withLength(BigInt(N + 1))],
];

const texts: Case[] = [
  ['non-JSON header', withHeaderText('{"a":'.padEnd(N))],
  ['header starting with a space', withHeaderText(` ${HEADER_TEXT}`)],
  ['header that is a JSON array', withHeaderText('[]'.padEnd(N))],
  ['header starting with a BOM', withHeaderText(`\uFEFF${HEADER_TEXT}`)],
  ['header that is invalid UTF-8', withHeaderText(Buffer.concat([Buffer.from(HEADER_TEXT.slice(0, 40)), Buffer.from([0xff]), Buffer.from(HEADER_TEXT.slice(41))]))],
  ['header padded with NULs', withHeaderText(`${HEADER_TEXT.trimEnd()}\0\0\0`)],
  ['trailing garbage after the header', withHeaderText(`${HEADER_TEXT.trimEnd()}x`)],
  ['duplicate tensor name (identical entry)', withHeaderText(HEADER_TEXT.replace(`"${WORD}":`, `"${WORD}":${JSON.stringify(HEADER[WORD])},"${WORD}":`)), WORD],
  ['duplicate tensor name spelled with an escape', withHeaderText(HEADER_TEXT.replace(`"${WORD}":`, `"${WORD}":${JSON.stringify(HEADER[WORD])},"\\u0062${WORD.slice(1)}":`)), WORD],
  ['duplicate field inside an entry', withHeaderText(HEADER_TEXT.replace(`"${WORD}":{`, `"${WORD}":{"dtype":"F16",`)), WORD],
  ['duplicate __metadata__', withHeaderText(HEADER_TEXT.replace('{"__metadata__"', '{"__metadata__":{},"__metadata__"'))],
];

const entries: Case[] = [
  ['overlapping offsets', withHeader((h) => { h[ORDER[5]].data_offsets = h[ORDER[5]].data_offsets.map((o: number) => o - 4); }), ORDER[5]],
  ['gap between tensors', withHeader((h) => shiftFrom(h, 5, 4), Buffer.concat([DATA, Buffer.alloc(4)])), ORDER[5]],
  ['first tensor not at 0', withHeader((h) => shiftFrom(h, 0, 4), Buffer.concat([Buffer.alloc(4), DATA])), ORDER[0]],
  ['bytes after the last tensor', withHeader(() => {}, Buffer.concat([DATA, Buffer.alloc(4)]))],
  ['last tensor past the end of the data', withHeader((h) => shiftFrom(h, ORDER.length - 1, DATA.length)), ORDER.at(-1)],
  ['offsets beyond the data, in order', withHeader((h) => shiftFrom(h, 0, 1 << 20)), ORDER[0]],
  ['end before begin', withHeader((h) => { h[WORD].data_offsets.reverse(); }), WORD],
  ['negative offset', withHeader((h) => { h[ORDER[0]].data_offsets = [-256, 0]; }), ORDER[0]],
  ['fractional offset', withHeader((h) => { h[ORDER[1]].data_offsets[1] += 0.5; }), ORDER[1]],
  ['offsets as strings', withHeader((h) => { h[WORD].data_offsets = h[WORD].data_offsets.map(String); }), WORD],
  ['three offsets', withHeader((h) => { h[WORD].data_offsets.push(0); }), WORD],
  ['offsets beyond 2^53', withHeader((h) => { h[WORD].data_offsets = [2 ** 53, 2 ** 53 + 256000]; }), WORD],
  ['missing data_offsets', withHeader((h) => { delete h[WORD].data_offsets; }), WORD],
  ['byte count wrong for the shape', withHeader((h) => { h[WORD].shape = [1000, 63]; }), WORD],
  ['byte count wrong for the dtype', withHeader((h) => { h[WORD].dtype = 'F16'; }), WORD],
  ['unknown dtype', withHeader((h) => { h[WORD].dtype = 'F128'; }), WORD],
  ['lower-case dtype', withHeader((h) => { h[WORD].dtype = 'f32'; }), WORD],
  ['dtype that is an Object.prototype key', withHeader((h) => { h[WORD].dtype = 'toString'; }), WORD],
  ['numeric dtype', withHeader((h) => { h[WORD].dtype = 32; }), WORD],
  ['missing dtype', withHeader((h) => { delete h[WORD].dtype; }), WORD],
  ['negative shape whose product still fits', withHeader((h) => { h[WORD].shape = [-1000, -64]; }), WORD],
  ['fractional shape', withHeader((h) => { h[WORD].shape = [0.5, 128000]; }), WORD],
  ['overflowing shape', withHeader((h) => { h[WORD].shape = [2 ** 30, 2 ** 30, 2 ** 30]; }), WORD],
  ['shape as a string', withHeader((h) => { h[WORD].shape = '1000,64'; }), WORD],
  ['shape with null (Infinity)', withHeader((h) => { h[WORD].shape = [Infinity, 64]; }), WORD],
  ['sub-byte dtype not filling whole bytes', withHeader((h) => { h[SMALL].dtype = 'F4'; h[SMALL].shape = [3]; }), SMALL],
  ['entry that is a number', withHeader((h) => { h[WORD] = 5; }), WORD],
  ['entry that is an array', withHeader((h) => { h[WORD] = [h[WORD]]; }), WORD],
  ['entry with an extra field', withHeader((h) => { h[WORD].extra = 1; }), WORD],
  ['metadata value not a string', withHeader((h) => { h.__metadata__ = { format: 1 }; }), '__metadata__'],
  ['metadata nested object', withHeader((h) => { h.__metadata__ = { format: { a: 'b' } }; }), '__metadata__'],
  ['metadata array', withHeader((h) => { h.__metadata__ = ['pt']; }), '__metadata__'],
  ['metadata string', withHeader((h) => { h.__metadata__ = 'pt'; }), '__metadata__'],
  ['metadata null', withHeader((h) => { h.__metadata__ = null; }), '__metadata__'],
];

const random = mulberry32(20240601);
const candidates = flipCandidates(HEADER_TEXT);
const flipSpots = new Map<string, [number, number]>();
while (flipSpots.size < 20) {
  const at = candidates[Math.floor(random() * candidates.length)];
  const bit = Math.floor(random() * 7);
  flipSpots.set(`${at}:${bit}`, [at, bit]);
}
const flips: Case[] = [...flipSpots.values()].map(([at, bit]) => [`bit ${bit} flipped at header byte ${at} (${JSON.stringify(HEADER_TEXT[at])})`, flipBit(ORIG, 8 + at, bit)]);
const prefixFlips: Case[] = [0, 1, 2, 3, 7].map((byte) => [`bit flipped in header length byte ${byte}`, flipBit(ORIG, byte, byte === 0 ? 4 : 3)]);

const cases: Case[] = [...truncations, ...lengths, ...texts, ...entries, ...flips, ...prefixFlips];

describe('readSafetensors refuses malformed files', () => {
  it('the unmodified source is accepted (so every failure below is the mutation)', () => {
    const path = join(tmp, 'original.safetensors');
    writeFileSync(path, withHeader(() => {}));
    expect(readSafetensors(path).tensors.size).toBe(ORDER.length);
  });

  it('has a corpus of at least 40 distinct files', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map(([, b]) => b.toString('base64'))).size).toBe(cases.length);
  });

  it.each(cases)('%s', (label, bytes, tensor) => {
    const path = join(tmp, `${label.replace(/[^a-z0-9]+/gi, '_')}.safetensors`);
    writeFileSync(path, bytes);
    let error: unknown;
    try {
      readSafetensors(path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    const e = error as InputError;
    expect(e.file).toBe(path);
    expect(e.message).toContain(path);
    if (tensor) expect(e.tensor).toBe(tensor);
  }, 5_000);
});
