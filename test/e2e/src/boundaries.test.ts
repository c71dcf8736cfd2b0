import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * The project's own lint configuration on a fixture text placed at `path` (the path picks the rules; the
 * file need not exist). Type-aware rules are off here: they need the file in a TypeScript project.
 */
async function restrictedImports(path: string, source: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: root,
    overrideConfig: {
      languageOptions: { parserOptions: { projectService: false } },
      rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-misused-promises': 'off' },
    },
  });
  const [result] = await eslint.lintText(source, { filePath: join(root, path) });
  assert.equal(result!.fatalErrorCount, 0, result!.messages.map((m) => m.message).join('; '));
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('package boundaries (eslint)', () => {
  test('a service importing another service, by name or by a relative path, fails the lint', async () => {
    assert.match(
      (
        await restrictedImports(
          'services/whatsapp/src/fixture.ts',
          "import { build } from '@puente/gateway';\nexport const x = build;\n",
        )
      )[0] ?? '',
      /never imports the gateway service/,
    );
    assert.match(
      (
        await restrictedImports(
          'services/realtime/src/fixture.ts',
          "import { service } from '@puente/whatsapp/testing';\nexport const x = service;\n",
        )
      )[0] ?? '',
      /never imports the whatsapp service/,
    );
    assert.match(
      (
        await restrictedImports(
          'services/whatsapp/src/sync/fixture.ts',
          "import { build } from '../../../gateway/src/app.js';\nexport const x = build;\n",
        )
      )[0] ?? '',
      /by its name/,
    );
  });

  test('a lib importing a service fails the lint; @puente/stack is refused outside tests and dev tools', async () => {
    assert.match(
      (
        await restrictedImports(
          'libs/projection/src/fixture.ts',
          "import { service } from '@puente/realtime';\nexport const x = service;\n",
        )
      )[0] ?? '',
      /never imports the realtime service/,
    );
    assert.match(
      (
        await restrictedImports(
          'services/gateway/src/fixture.ts',
          "import { startStack } from '@puente/stack';\nexport const x = startStack;\n",
        )
      )[0] ?? '',
      /tests and dev tools only/,
    );
    assert.match(
      (
        await restrictedImports(
          'libs/bus/src/fixture.ts',
          "import { startStack } from '@puente/stack';\nexport const x = startStack;\n",
        )
      )[0] ?? '',
      /tests and dev tools only/,
    );
  });

  test('the CLI imports a service through its root only: a subpath, or the fixtures of /testing outside its tests, fails the lint', async () => {
    assert.match(
      (
        await restrictedImports(
          'cli/src/fixture.ts',
          "import { CatalogSync } from '@puente/bitrix-sync/catalog';\nexport const x = CatalogSync;\n",
        )
      )[0] ?? '',
      /through its root \(@puente\/bitrix-sync\), never a subpath/,
    );
    assert.match(
      (
        await restrictedImports(
          'cli/src/fixture.ts',
          "import { FakeInboxHub } from '@puente/whatsapp/testing';\nexport const x = FakeInboxHub;\n",
        )
      )[0] ?? '',
      /through its root \(@puente\/whatsapp\)/,
    );
    assert.match(
      (
        await restrictedImports(
          'cli/src/fixture.ts',
          "import { x } from '@puente/kissflow-sync/dist/app.js';\nexport const y = x;\n",
        )
      )[0] ?? '',
      /through its root/,
    );
    assert.deepEqual(
      await restrictedImports(
        'cli/src/fixture.ts',
        "import { CatalogSync } from '@puente/bitrix-sync';\nimport { replayable } from '@puente/whatsapp';\nexport const x = [CatalogSync, replayable];\n",
      ),
      [],
    );
    assert.deepEqual(
      await restrictedImports(
        'cli/src/fixture.int.test.ts',
        "import { FakeInboxHub } from '@puente/whatsapp/testing';\nexport const x = FakeInboxHub;\n",
      ),
      [],
    );
  });

  test('what the rules allow: libs from services, the stack in tests, a service in its own folders', async () => {
    assert.deepEqual(
      await restrictedImports(
        'services/gateway/src/fixture.ts',
        "import { Bus } from '@puente/bus';\nimport { x } from '../webhooks/raw.js';\nexport const y = [Bus, x];\n",
      ),
      [],
    );
    assert.deepEqual(
      await restrictedImports(
        'services/gateway/src/fixture.test.ts',
        "import { startStack } from '@puente/stack';\nexport const x = startStack;\n",
      ),
      [],
    );
    assert.deepEqual(
      await restrictedImports(
        'test/e2e/src/fixture.ts',
        "import { build } from '@puente/gateway';\nimport { service } from '@puente/whatsapp';\nexport const x = [build, service];\n",
      ),
      [],
    );
  });
});
