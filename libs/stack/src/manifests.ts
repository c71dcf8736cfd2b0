import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parseAllDocuments } from 'yaml';
import { cacheBin, findBinary } from './binaries.js';
import { run, StackError } from './processes.js';

/**
 * Offline checks of deploy/k8s and docker-compose.yml (no cluster, no Docker): `kustomize build`, then
 * every object against the Kubernetes OpenAPI schema of a pinned release, and the compose file against
 * the Compose Specification's schema. The tools and schemas come from the Go module proxy once and are
 * cached outside the clone (the Go module cache and the tool cache).
 */
export const ManifestTools = {
  kustomize: 'v5.5.0',
  /** The `k8s.io/kubernetes` module of this release carries `api/openapi-spec/swagger.json`. */
  kubernetes: 'v1.31.4',
  /** `compose-go` carries the Compose Specification's schema (`schema/compose-spec.json`). */
  composeGo: 'v2.4.4',
} as const;

const execFileAsync = promisify(execFile);

function go(): string {
  const found = findBinary('go') ?? '/usr/local/go/bin/go';
  return found;
}

/** kustomize from the cache or PATH, else built with `go install` into the cache. */
export async function ensureKustomize(log: (line: string) => void): Promise<string> {
  const found = findBinary('kustomize');
  if (found) return found;
  log(`installing kustomize ${ManifestTools.kustomize} with go install (once; cached in ${cacheBin()})`);
  try {
    await run(go(), ['install', `sigs.k8s.io/kustomize/kustomize/v5@${ManifestTools.kustomize}`], {
      env: { ...process.env, GOBIN: cacheBin(), GOFLAGS: '-buildvcs=false' },
    });
  } catch (error) {
    throw new StackError(
      `could not install kustomize with go install (${(error as Error).message.split('\n')[0]}); check access to the Go module proxy or put kustomize on PATH`,
    );
  }
  return join(cacheBin(), 'kustomize');
}

/** A file of a Go module at a version, downloaded through the module proxy into the module cache. */
async function moduleFile(module: string, version: string, path: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(go(), ['mod', 'download', '-json', `${module}@${version}`], {
      maxBuffer: 1 << 20,
      env: { ...process.env, GOFLAGS: '-mod=mod' },
    });
    const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
    if (!info.Dir) throw new Error(info.Error ?? 'no module directory');
    return join(info.Dir, path);
  } catch (error) {
    throw new StackError(
      `could not download ${module}@${version} from the Go module proxy (${(error as Error).message.split('\n')[0]})`,
    );
  }
}

/** `kustomize build <dir>`: the rendered objects. */
export async function kustomizeBuild(
  dir: string,
  log: (line: string) => void = () => undefined,
): Promise<KubeObject[]> {
  const kustomize = await ensureKustomize(log);
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(kustomize, ['build', dir], { maxBuffer: 64 << 20 }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? (error as Error).message;
    throw new StackError(`kustomize build ${dir} failed: ${stderr.trim()}`);
  }
  return parseAllDocuments(stdout)
    .map((doc) => doc.toJSON() as KubeObject)
    .filter(Boolean);
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

type Schema = Record<string, unknown> & {
  properties?: Record<string, unknown>;
  additionalProperties?: unknown;
  'x-kubernetes-group-version-kind'?: { group: string; version: string; kind: string }[];
};

/**
 * Validates Kubernetes objects against the OpenAPI (swagger 2) definitions of one release, strictly:
 * an unknown field is an error (as `kubectl apply --validate=strict` and kubeconform `-strict` do).
 */
export class KubernetesSchema {
  private readonly ajv: Ajv;
  private readonly byKind = new Map<string, string>();
  private readonly compiled = new Map<string, ValidateFunction>();

  private constructor(definitions: Record<string, Schema>) {
    for (const [name, schema] of Object.entries(definitions)) {
      for (const gvk of schema['x-kubernetes-group-version-kind'] ?? []) {
        this.byKind.set(`${gvk.group ? `${gvk.group}/` : ''}${gvk.version}/${gvk.kind}`, name);
      }
      // Strict: objects with declared properties take nothing else.
      if (schema.properties && schema.additionalProperties === undefined) schema.additionalProperties = false;
    }
    // Types the swagger file declares as strings that YAML writes as numbers too.
    definitions['io.k8s.apimachinery.pkg.util.intstr.IntOrString'] = {
      oneOf: [{ type: 'string' }, { type: 'integer' }],
    };
    definitions['io.k8s.apimachinery.pkg.api.resource.Quantity'] = { oneOf: [{ type: 'string' }, { type: 'number' }] };
    this.ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
    this.ajv.addSchema({ $id: 'k8s', definitions }, 'k8s');
  }

  /** The schema of the pinned release, from the Go module proxy (cached). */
  static async load(): Promise<KubernetesSchema> {
    const file = await moduleFile('k8s.io/kubernetes', ManifestTools.kubernetes, 'api/openapi-spec/swagger.json');
    const swagger = JSON.parse(readFileSync(file, 'utf8')) as { definitions: Record<string, Schema> };
    return new KubernetesSchema(swagger.definitions);
  }

  /** Problems with one object (empty when it is valid), each as `Kind/name: path message`. */
  validate(object: KubeObject): string[] {
    const id = `${object?.kind ?? '?'}/${object?.metadata?.name ?? '?'}`;
    const definition = this.byKind.get(`${object?.apiVersion}/${object?.kind}`);
    if (!definition)
      return [`${id}: no ${object?.apiVersion} ${object?.kind} in Kubernetes ${ManifestTools.kubernetes}`];
    let validate = this.compiled.get(definition);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `k8s#/definitions/${definition}` });
      this.compiled.set(definition, validate);
    }
    if (validate(object)) return [];
    return (validate.errors ?? []).map(
      (e) =>
        `${id}: ${e.instancePath || '/'} ${e.message ?? 'invalid'}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`,
    );
  }
}

/** Removes draft-4 `id` keywords (the schema's ids are informational; Ajv refuses the keyword). */
function stripDraft4Ids(schema: unknown): void {
  if (!schema || typeof schema !== 'object') return;
  if (Array.isArray(schema)) return schema.forEach(stripDraft4Ids);
  const record = schema as Record<string, unknown>;
  if (typeof record.id === 'string') delete record.id;
  for (const [key, value] of Object.entries(record)) {
    if (key === 'properties' || key === 'patternProperties' || key === 'definitions' || key === '$defs') {
      for (const child of Object.values(value as Record<string, unknown>)) stripDraft4Ids(child);
    } else stripDraft4Ids(value);
  }
}

/** Validates a compose file's content against the Compose Specification's schema. */
export class ComposeSchema {
  private constructor(private readonly check: ValidateFunction) {}

  static async load(): Promise<ComposeSchema> {
    const file = await moduleFile(
      'github.com/compose-spec/compose-go/v2',
      ManifestTools.composeGo,
      'schema/compose-spec.json',
    );
    const schema = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    delete schema.$schema;
    stripDraft4Ids(schema);
    const ajv = new Ajv2019({ strict: false, validateFormats: false, allErrors: true });
    return new ComposeSchema(ajv.compile(schema));
  }

  validate(compose: unknown): string[] {
    if (this.check(compose)) return [];
    return (this.check.errors ?? []).map(
      (e) =>
        `${e.instancePath || '/'} ${e.message ?? 'invalid'}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`,
    );
  }
}
