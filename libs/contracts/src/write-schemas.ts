import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allJsonSchemas } from './schemas.js';

/** `npm run contracts:schema`: writes docs/schemas/<type>.json for every event type. */
const dir = join(process.cwd(), 'docs', 'schemas');
mkdirSync(dir, { recursive: true });
const schemas = allJsonSchemas();
for (const file of readdirSync(dir)) if (!schemas.has(file)) rmSync(join(dir, file));
for (const [file, text] of schemas) writeFileSync(join(dir, file), text);
process.stdout.write(`wrote ${schemas.size} files to ${dir}\n`);
