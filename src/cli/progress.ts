/**
 * Training progress: a redrawn bar on a terminal, a plain line every `every` steps otherwise
 * (CI logs keep every line, so a bar would flood them).
 */
import type { StepRecord } from '../align/curve.ts';

export function progressReporter(stream: NodeJS.WriteStream, every = 100): (record: StepRecord, total: number) => void {
  const tty = stream.isTTY === true;
  const started = performance.now();
  return (record, total) => {
    const done = record.step + 1;
    const msPerStep = (performance.now() - started) / done;
    const text = `step ${String(done).padStart(String(total).length)}/${total}  loss ${record.loss.toFixed(6)}  grad norm ${record.gradNorm.toFixed(4)}  lr ${record.lr.toExponential(3)}  ${msPerStep.toFixed(1)} ms/step`;
    if (tty) {
      const width = 24;
      const filled = Math.round((done / total) * width);
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`);
      if (done === total) stream.write('\n');
    } else if (done % every === 0 || done === total || done === 1) {
      stream.write(`${text}\n`);
    }
  };
}
