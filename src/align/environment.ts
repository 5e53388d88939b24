/** What a verdict records about where it was computed. */
import { execFileSync } from 'node:child_process';
import { tf } from '../backend/tf.ts';
import type { SelectedBackend } from '../backend/select.ts';
import { hashSuiteFiles, type Suite } from './suite.ts';
import type { EnvironmentInfo } from './verdict.ts';

export function describeEnvironment(backend: SelectedBackend, suite: Suite): EnvironmentInfo {
  return {
    backend: backend.name,
    ...(backend.adapter ? { adapter: backend.adapter } : {}),
    goldenKey: backend.goldenKey,
    ...(backend.skipped.length ? { skippedBackends: backend.skipped } : {}),
    node: process.version,
    tfjs: tf.version.tfjs,
    platform: `${process.platform}-${process.arch}`,
    commit: gitCommit(),
    suiteHashes: hashSuiteFiles(suite),
  };
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}

