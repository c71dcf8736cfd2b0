import { join, resolve } from 'node:path';
import { startStack } from './stack.js';
import { StackError } from './processes.js';

/**
 * `npm run stack -- up`: starts NATS, the MongoDB-wire server and PostgreSQL under `.data/` in the
 * foreground and prints the variables that point services and tests at them; Ctrl-C stops them.
 * While it runs, `npm start` and `npm test` in another terminal reuse these servers.
 */
const [command] = process.argv.slice(2);
if (command !== 'up') {
  process.stderr.write('usage: npm run stack -- up\n');
  process.exit(2);
}
try {
  const stack = await startStack({ dir: join(resolve(process.cwd()), '.data'), mode: 'dev' });
  process.stdout.write('local stack is up; Ctrl-C stops it. For other shells:\n');
  for (const [name, value] of Object.entries(stack.env())) process.stdout.write(`  export ${name}=${value}\n`);
  const stop = () => void stack.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  process.stderr.write(`stack: ${error instanceof StackError ? error.message : (error as Error).message}\n`);
  process.exit(1);
}
