import {
  accessSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { run, StackError } from './processes.js';

/** Pinned versions of what the stack builds when it is missing. */
export const Versions = {
  natsServer: 'v2.15.2',
  ferretdb: 'v1.24.2',
} as const;

/** The tool cache, outside any clone so fresh clones reuse it (`PUENTE_CACHE_DIR` overrides). */
export function cacheDir(): string {
  return process.env.PUENTE_CACHE_DIR ?? join(homedir(), '.cache', 'puente');
}

export function cacheBin(): string {
  const dir = join(cacheDir(), 'bin');
  mkdirSync(dir, { recursive: true });
  return dir;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** First executable of that name in the tool cache, then on PATH. */
export function findBinary(name: string): string | undefined {
  const dirs = [cacheBin(), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

function requireGo(what: string): string {
  const go = findBinary('go') ?? (executable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go)
    throw new StackError(
      `${what} is missing and Go is not installed to build it: install Go (https://go.dev/dl) or put ${what} on PATH`,
    );
  return go;
}

/** nats-server from the cache or PATH, else built with `go install` into the cache. */
export async function ensureNatsServer(log: (line: string) => void): Promise<string> {
  const found = findBinary('nats-server');
  if (found) return found;
  const go = requireGo('nats-server');
  log(`installing nats-server ${Versions.natsServer} with go install (once; cached in ${cacheBin()})`);
  try {
    await run(go, ['install', `github.com/nats-io/nats-server/v2@${Versions.natsServer}`], {
      env: { ...process.env, GOBIN: cacheBin(), GOFLAGS: '-buildvcs=false' },
    });
  } catch (error) {
    throw new StackError(
      `could not install nats-server with go install (${(error as Error).message.split('\n')[0]}); check access to the Go module proxy or put nats-server on PATH`,
    );
  }
  return join(cacheBin(), 'nats-server');
}

/**
 * FerretDB v1 from the cache or PATH, else built from its module. `go install` of the module fails
 * because its build embeds generated version files that the published module does not ship (and the
 * proxy refuses the version list it consults first), so this downloads the module, writes
 * `build/version/version.txt` the way distribution packagers do, and builds `cmd/ferretdb`.
 */
export async function ensureFerretDB(log: (line: string) => void): Promise<string> {
  const found = findBinary('ferretdb');
  if (found) return found;
  const go = requireGo('ferretdb');
  const module = `github.com/FerretDB/FerretDB@${Versions.ferretdb}`;
  log(
    `building FerretDB ${Versions.ferretdb} from the Go module proxy (once, about a minute; cached in ${cacheBin()})`,
  );
  try {
    const info = JSON.parse(await run(go, ['mod', 'download', '-json', module])) as { Dir?: string; Error?: string };
    if (!info.Dir) throw new Error(info.Error ?? 'no module directory');
    const buildDir = join(cacheDir(), 'build', `ferretdb-${Versions.ferretdb}`);
    rmSync(buildDir, { recursive: true, force: true });
    cpSync(info.Dir, buildDir, { recursive: true });
    makeWritable(buildDir);
    writeFileSync(join(buildDir, 'build', 'version', 'version.txt'), `${Versions.ferretdb}\n`);
    writeFileSync(join(buildDir, 'build', 'version', 'package.txt'), 'puente\n');
    await run(go, ['build', '-trimpath', '-o', join(cacheBin(), 'ferretdb'), './cmd/ferretdb'], {
      cwd: buildDir,
      env: { ...process.env, GOFLAGS: '-buildvcs=false' },
    });
  } catch (error) {
    throw new StackError(
      `could not build FerretDB ${Versions.ferretdb} (${(error as Error).message.split('\n')[0]}); check access to the Go module proxy or put ferretdb on PATH`,
    );
  }
  return join(cacheBin(), 'ferretdb');
}

function makeWritable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) makeWritable(path);
    else chmodSync(path, 0o644);
  }
}

/** The directory holding `postgres`, `initdb` (Debian keeps them under /usr/lib/postgresql/<version>/bin). */
export async function ensurePostgres(log: (line: string) => void): Promise<string> {
  const located = locatePostgres();
  if (located) return located;
  if (process.getuid?.() !== 0) {
    throw new StackError(
      'PostgreSQL server binaries not found: install them (Debian: sudo apt-get install -y postgresql) or set GLYMS_DATABASE_URL',
    );
  }
  log('installing PostgreSQL with apt-get (once)');
  await aptInstall('postgresql', 'install postgresql by hand or set GLYMS_DATABASE_URL');
  const installed = locatePostgres();
  if (!installed)
    throw new StackError('apt-get installed postgresql but no postgres binary was found under /usr/lib/postgresql');
  return installed;
}

/** The directory of the newest PostgreSQL server binaries (`/usr/lib/postgresql/<version>/bin`, else beside `postgres` on PATH), if installed. */
export function locatePostgres(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const bin = join(root, version, 'bin');
      if (executable(join(bin, 'postgres')) && executable(join(bin, 'initdb'))) return bin;
    }
  }
  const postgres = findBinary('postgres');
  const initdb = findBinary('initdb');
  if (postgres && initdb) return join(postgres, '..');
  return undefined;
}

/**
 * Chromium for the browser tests: Debian's `chromium` at /usr/bin/chromium (or CHROMIUM_PATH),
 * installed with apt-get when missing and this runs as root.
 */
export async function ensureChromium(log: (line: string) => void): Promise<string> {
  const wanted = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (existsSync(wanted)) return wanted;
  if (process.getuid?.() !== 0)
    throw new StackError(
      `Chromium not found at ${wanted}: install it (Debian: sudo apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  log('installing Chromium with apt-get (once)');
  await aptInstall('chromium', 'install chromium by hand or set CHROMIUM_PATH');
  if (!existsSync(wanted)) throw new StackError(`apt-get installed chromium but ${wanted} does not exist`);
  return wanted;
}

/** `apt-get update && apt-get install <package>` (root only), failing with one line that says what to do instead. */
export async function aptInstall(pkg: string, instead: string): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['update'], { env });
    await run('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env });
  } catch (error) {
    throw new StackError(
      `could not install ${pkg} with apt-get (${(error as Error).message.split('\n')[0]}); ${instead}`,
    );
  }
}
