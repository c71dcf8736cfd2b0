import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The dependency rules of docs/architecture.md, enforced: services never import each other, libs never
 * import services, the CLI imports a service only through its root, and `@puente/stack` (the local
 * servers) is for tests and dev tools only.
 */
const SERVICES = ['gateway', 'kissflow-sync', 'whatsapp', 'bitrix-sync', 'realtime'];
const TEST_FILES = ['**/*.test.ts', '**/testing/**/*.ts', '**/testing.ts'];
const service = (name) => ({
  group: [`@puente/${name}`, `@puente/${name}/*`],
  message: `a service or lib never imports the ${name} service: talk to it through events on the bus`,
});
/** A relative path that climbs out of its package into a service's or lib's sources. */
const climbsOut = {
  regex: String.raw`^(\.\./)+(services|libs)/|^(\.\./){2,}(${SERVICES.join('|')})/`,
  message: 'import another package by its name (@puente/...), never by a relative path into it',
};
const stack = {
  group: ['@puente/stack', '@puente/stack/*'],
  message: '@puente/stack starts local servers: tests and dev tools only',
};
const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
/** A service's subpath: the CLI composes a service through its root (`src/index.ts`, its curated surface) only. */
const subpath = (name, allowed) => ({
  group: [`@puente/${name}/*`, ...allowed.map((path) => `!@puente/${name}/${path}`)],
  message: `the CLI imports the ${name} service through its root (@puente/${name}), never a subpath`,
});
const cliSubpaths = (...allowed) => SERVICES.map((name) => subpath(name, allowed));

const boundaries = [
  ...SERVICES.flatMap((name) => {
    const others = SERVICES.filter((other) => other !== name).map(service);
    return [
      { files: [`services/${name}/**/*.ts`], rules: restrict(...others, climbsOut, stack) },
      { files: TEST_FILES.map((glob) => `services/${name}/${glob}`), rules: restrict(...others, climbsOut) },
    ];
  }),
  { files: ['libs/**/*.ts'], rules: restrict(...SERVICES.map(service), climbsOut, stack) },
  {
    files: ['libs/stack/**/*.ts', ...TEST_FILES.map((glob) => `libs/${glob}`)],
    rules: restrict(...SERVICES.map(service), climbsOut),
  },
  // The CLI's own tests may also use a service's fixtures and fakes (`/testing`), as end-to-end tests do.
  { files: ['cli/src/**/*.ts'], rules: restrict(...cliSubpaths()) },
  { files: TEST_FILES.map((glob) => `cli/src/${glob}`), rules: restrict(...cliSubpaths('testing')) },
];

export default tseslint.config(
  { ignores: ['cli/bin/**', '**/dist/**', '**/node_modules/**', '.data/**', 'docs/schemas/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    // Parameter types of decorated methods are runtime values under emitDecoratorMetadata.
    languageOptions: {
      parserOptions: {
        emitDecoratorMetadata: true,
        experimentalDecorators: true,
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // A promise nobody awaits loses its failure; node:test's test() and describe() are awaited by the runner.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['**/*.test.ts', '**/testing/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  ...boundaries,
);
