import { describe, expect, it } from 'vitest';
import { escapeXml, renderJunit } from '../../../src/align/report/junit.ts';
import { syntheticRun } from './synthetic.ts';

/**
 * A small strict XML reader, independent of the writer: it rejects unbalanced or overlapping tags,
 * unquoted or duplicate attributes, raw `<` or `&` outside entities, text outside the root, and
 * characters XML 1.0 forbids. Enough to hold JUnit output to well-formedness.
 */
interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITY = /&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/y;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch === '<') throw new Error(`raw "<" in ${where}`);
    if (ch !== '&') {
      out += ch;
      continue;
    }
    ENTITY.lastIndex = i;
    const m = ENTITY.exec(raw);
    if (!m) throw new Error(`bad entity in ${where}: ${raw.slice(i, i + 12)}`);
    const body = m[0].slice(1, -1);
    out += body.startsWith('#x') ? String.fromCodePoint(parseInt(body.slice(2), 16)) : body.startsWith('#') ? String.fromCodePoint(Number(body.slice(1))) : NAMED[body];
    i += m[0].length - 1;
  }
  return out;
}

function parseXml(xml: string): XmlElement {
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(xml)) throw new Error('control character XML 1.0 forbids');
  let pos = 0;
  const decl = /^<\?xml version="1\.0" encoding="UTF-8"\?>\s*/.exec(xml);
  if (!decl) throw new Error('missing XML declaration');
  pos = decl[0].length;
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>/y;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    const text = xml.slice(pos, lt < 0 ? xml.length : lt);
    if (stack.length === 0 && text.trim() !== '') throw new Error(`text outside the root: ${text.slice(0, 20)}`);
    if (stack.length > 0) stack[stack.length - 1].text += decode(text, 'text');
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 40)}`);
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> closes <${open?.name}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const a of attrText.matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)) {
        if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]} on <${name}>`);
        attrs[a[1]] = decode(a[2], `attribute ${a[1]}`);
      }
      const el: XmlElement = { name, attrs, children: [], text: '' };
      if (stack.length > 0) stack[stack.length - 1].children.push(el);
      else if (root) throw new Error('second root element');
      else root = el;
      if (!selfClose) stack.push(el);
    }
    pos = tag.lastIndex;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

function all(el: XmlElement, name: string): XmlElement[] {
  return [...(el.name === name ? [el] : []), ...el.children.flatMap((c) => all(c, name))];
}

describe('the test XML reader', () => {
  it.each([
    ['<a><b></a></b>', /closes/],
    ['<a x=1/>', /malformed/],
    ['<a>&nbsp;</a>', /bad entity/],
    ['<a/><b/>', /second root/],
    ['<a x="1" x="2"/>', /duplicate/],
    ['<a>\u0001</a>', /control/],
  ])('rejects %j', (body, error) => {
    expect(() => parseXml(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`)).toThrow(error);
  });
});

describe('renderJunit', () => {
  it('writes one testcase per check and no failure for an aligned run', () => {
    const root = parseXml(renderJunit(syntheticRun({ aligned: true }).verdict));
    const suite = all(root, 'testsuite')[0];
    // 7 forward tensors + 5 train metrics + 2 generation cases + 1 golden metric.
    expect(all(root, 'testcase')).toHaveLength(15);
    expect(all(root, 'failure')).toHaveLength(0);
    expect(suite.attrs).toMatchObject({ name: 'parity.synthetic-pass', tests: '15', failures: '0', time: '120.500' });
  });

  it('fails exactly the misaligned checks, with their numbers in the message', () => {
    const { verdict } = syntheticRun({ aligned: false });
    const root = parseXml(renderJunit(verdict));
    const failing = all(root, 'testcase').filter((tc) => tc.children.some((c) => c.name === 'failure'));
    // 2 forward tensors, loss, one generation case; the missing golden is skipped, not failed.
    expect(failing.map((tc) => `${tc.attrs.classname}/${tc.attrs.name}`)).toEqual([
      'parity.synthetic-fail.forward/initial/hidden_states.2',
      'parity.synthetic-fail.forward/initial/logits',
      'parity.synthetic-fail.train/loss',
      'parity.synthetic-fail.generation/greedy-1',
    ]);
    expect(all(root, 'testsuite')[0].attrs).toMatchObject({ tests: '15', failures: '4', skipped: '1' });
    expect(root.attrs).toMatchObject({ tests: '15', failures: '4', skipped: '1' });

    const loss = verdict.train!.metrics.find((m) => m.metric === 'loss')!;
    const message = failing[2].children[0].attrs.message;
    expect(message).toContain(`failing steps ${loss.failingSteps}/${loss.steps}`);
    expect(message).toContain(`first failing step ${loss.firstFailingStep}`);
    expect(message).toContain(`max|diff| ${Number(loss.maxAbsDiff.toPrecision(4))} at step ${loss.maxAbsDiffStep}`);
    expect(message).toContain('tolerance atol 0.001 + rtol 0.001·|ref|');
    expect(failing[0].children[0].attrs.message).toContain('max|diff| 0.09');
    expect(failing[0].children[0].attrs.message).toContain('atol 1e-5 + rtol 1e-4·|ref|');
  });

  it('skips, never passes, the golden of a backend that has none yet', () => {
    const root = parseXml(renderJunit(syntheticRun({ aligned: false }).verdict));
    const golden = all(root, 'testcase').find((tc) => tc.attrs.classname === 'parity.synthetic-fail.golden')!;
    expect(golden.children.map((c) => c.name)).toEqual(['skipped']);
    expect(golden.children[0].attrs.message).toBe('no golden for backend wasm (baselines/synthetic-fail/golden.wasm.json); bless one to start regression checks');
  });

  it('fails a golden that is present and differs', () => {
    const { verdict } = syntheticRun({ aligned: true });
    verdict.golden!.metrics[0] = { ...verdict.golden!.metrics[0], pass: false, failingSteps: 3, firstFailingStep: 9, maxAbsDiff: 1.2e-7 };
    verdict.golden!.pass = false;
    const failure = all(parseXml(renderJunit(verdict)), 'failure');
    expect(failure.map((f) => f.attrs.type)).toEqual(['golden-mismatch']);
    expect(failure[0].attrs.message).toContain('tolerance exact (deterministic); failing steps 3/200 (0 allowed); first failing step 9');
  });

  it('stays well-formed with hostile names and round-trips them', () => {
    const name = `a<b>&"c'\u0001\n]]>`;
    const root = parseXml(renderJunit(syntheticRun({ aligned: false, suite: name, extraTensorName: name }).verdict));
    const names = all(root, 'testcase').map((tc) => tc.attrs.name);
    expect(names).toContain(`a<b>&"c'\uFFFD\n]]>`);
    expect(all(root, 'testsuite')[0].attrs.name).toBe(`parity.a<b>&"c'\uFFFD\n]]>`);
  });

  it('fails a verdict whose pass is false even when every check passed', () => {
    const { verdict } = syntheticRun({ aligned: true });
    verdict.pass = false;
    const failures = all(parseXml(renderJunit(verdict)), 'failure');
    expect(failures).toHaveLength(1);
    expect(failures[0].attrs.message).toBe('verdict.pass is false but no single check failed');
  });

  it('fails a failed forward section that compared no tensors', () => {
    const { verdict } = syntheticRun({ aligned: true });
    verdict.forward = { ...verdict.forward!, pass: false, tensors: [] };
    verdict.pass = false;
    const tc = all(parseXml(renderJunit(verdict)), 'testcase').find((t) => t.attrs.name === 'forward (overall)');
    expect(tc?.children[0].attrs.message).toBe('no forward tensors were compared');
  });

  it('fails a run that stopped early, naming the step', () => {
    const { verdict } = syntheticRun({ aligned: true });
    verdict.train!.stoppedAt = { step: 42, reason: 'loss is NaN' };
    const tc = all(parseXml(renderJunit(verdict)), 'testcase').find((t) => t.attrs.name === 'completed');
    expect(tc?.children[0].attrs.message).toBe('training stopped early at step 42: loss is NaN');
  });

  it('reads a non-finite max|diff| (null in verdict.json) as non-finite', () => {
    const { verdict } = syntheticRun({ aligned: false });
    (verdict.train!.metrics[0] as { maxAbsDiff: number | null }).maxAbsDiff = null;
    const failure = all(parseXml(renderJunit(verdict)), 'failure').find((f) => f.attrs.type === 'train-mismatch');
    expect(failure?.attrs.message).toMatch(/^loss: max\|diff\| non-finite at step/);
  });
});

describe('escapeXml', () => {
  it('escapes markup, keeps whitespace as character references and replaces forbidden characters', () => {
    expect(escapeXml(`<&>"'\t\n\r\u0000\uD800`)).toBe('&lt;&amp;&gt;&quot;&apos;&#9;&#10;&#13;\uFFFD\uFFFD');
  });
});
