#!/usr/bin/env node
// npm links this launcher at install time, before TypeScript is compiled; the CLI lives in cli/src.
import('../dist/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('puente: the CLI is not built yet; run `npm run build` (npm start and npm test build too)\n');
  } else {
    process.stderr.write(`puente: ${error && error.stack ? error.stack : error}\n`);
  }
  process.exit(1);
});
