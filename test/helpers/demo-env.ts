import { randomBytes } from 'node:crypto';
import {
  type DemoEnvironment,
  type DemoEnvironmentOptions,
  PROJECT_ROOT,
  startDemoEnvironment,
} from '../../src/devtools/demo/environment.js';

/** Demo-environment options of one test: its own databases (dropped on close), Redis prefix and data directory. */
export function testEnvironmentOptions(opts: DemoEnvironmentOptions = {}): DemoEnvironmentOptions {
  const id = randomBytes(4).toString('hex');
  return {
    databaseName: `ai_sre_test_${id}`,
    sandboxDatabaseName: `ai_sre_test_sandbox_${id}`,
    queuePrefix: `ai-sre-test-${id}`,
    dataDir: `${PROJECT_ROOT}.test-data/${id}`,
    dropOnClose: true,
    ...opts,
  };
}

/** The sandbox, the Slack stand-in and the bot on free ports, isolated for one test. */
export function startTestEnvironment(opts: DemoEnvironmentOptions = {}): Promise<DemoEnvironment> {
  return startDemoEnvironment(testEnvironmentOptions(opts));
}
