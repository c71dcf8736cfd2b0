import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parse } from 'yaml';
import { Bus } from '@puente/bus';
import { uniqueName } from '@puente/bus/testing';
import { StreamDefinitions, StreamNames } from '@puente/contracts';
import { duration } from '@puente/runtime';
import {
  ComposeSchema,
  ensureDatabase,
  ensureNatsServer,
  freePort,
  glymsDemoSql,
  postgresServerUrl,
  KubernetesSchema,
  kustomizeBuild,
  ManifestTools,
  startNats,
  type KubeObject,
} from '@puente/stack';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const k8s = join(root, 'deploy/k8s');
const overlays = ['dev', 'prod'] as const;
const PUENTE_SERVICES = ['gateway', 'kissflow-sync', 'whatsapp', 'bitrix-sync', 'realtime'];
/** The largest webhook (WEBHOOK_MAX_BYTES, 4 MB) plus headers and envelope: what the stack's own NATS gets. */
const MIN_MAX_PAYLOAD = 8 * 1024 * 1024;

type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { configMapKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
};
type Probe = { httpGet?: { path: string; port: string | number }; exec?: { command: string[] } };
type PodSpec = {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
};
type Workload = KubeObject & {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
};

const rendered = new Map<string, KubeObject[]>();
before(async () => {
  for (const overlay of overlays) rendered.set(overlay, await kustomizeBuild(join(k8s, 'overlays', overlay)));
});

const objects = (overlay: string, kind?: string) => rendered.get(overlay)!.filter((o) => !kind || o.kind === kind);
const workloads = (overlay: string) =>
  objects(overlay).filter((o): o is Workload => o.kind === 'Deployment' || o.kind === 'StatefulSet');
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
/** A configuration duration (`20s`, `500ms`) in seconds, parsed as the services parse it. */
const durationSeconds = (value: string) => duration().parse(value) / 1000;

describe('Kubernetes manifests (offline)', () => {
  test(`kustomize build of each overlay renders, and every object validates strictly against Kubernetes ${ManifestTools.kubernetes}'s OpenAPI schema`, async () => {
    const schema = await KubernetesSchema.load();
    // The validator itself catches what a cluster would refuse.
    const broken = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'broken' },
      spec: {
        replicas: 'two',
        selector: {},
        template: { spec: { containers: [{ name: 'a', image: 'x', imagee: 'typo' }] } },
      },
    };
    const problems = schema.validate(broken as never);
    assert.ok(
      problems.some((p) => p.includes('/spec/replicas')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes('(imagee)')),
      problems.join('\n'),
    );
    assert.deepEqual(schema.validate({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } }), [
      `Deploymnet/x: no apps/v1 Deploymnet in Kubernetes ${ManifestTools.kubernetes}`,
    ]);

    for (const overlay of overlays) {
      const all = objects(overlay);
      assert.ok(all.length > 20, `${overlay} renders (${all.length} objects)`);
      assert.deepEqual(
        all.flatMap((o) => schema.validate(o)),
        [],
        `${overlay} objects are valid`,
      );
    }
    const example = parse(readFileSync(join(k8s, 'base/secret.example.yaml'), 'utf8')) as KubeObject & {
      stringData: Record<string, string>;
    };
    assert.deepEqual(schema.validate(example), []);
    for (const [name, value] of Object.entries(example.stringData))
      assert.match(value, /example/, `${name} is an obviously fake value`);
  });

  test('every workload has readiness and liveness probes, resource requests and a memory limit; Puente runs non-root, read-only, on its real endpoints, with a grace period longer than its drain bound', () => {
    for (const overlay of overlays) {
      const config = objects(overlay, 'ConfigMap').find((c) => c.metadata.name === 'puente-config') as KubeObject & {
        data: Record<string, string>;
      };
      const drain = durationSeconds(config.data.SHUTDOWN_TIMEOUT ?? '10s');
      assert.ok(
        durationSeconds(config.data.DRAIN_DELAY ?? '0') < drain,
        `${overlay}: DRAIN_DELAY is part of SHUTDOWN_TIMEOUT`,
      );
      for (const workload of workloads(overlay)) {
        const where = `${overlay} ${workload.kind}/${workload.metadata.name}`;
        const pod = workload.spec.template.spec;
        assert.ok(
          matches(workload.spec.selector.matchLabels, workload.spec.template.metadata.labels),
          `${where}: its selector matches its pods`,
        );
        for (const c of pod.containers) {
          assert.ok(c.readinessProbe, `${where}/${c.name}: readiness probe`);
          assert.ok(c.livenessProbe, `${where}/${c.name}: liveness probe`);
          assert.ok(
            c.resources?.requests?.cpu && c.resources.requests.memory,
            `${where}/${c.name}: cpu and memory requests`,
          );
          assert.ok(c.resources?.limits?.memory, `${where}/${c.name}: memory limit`);
          for (const probe of [c.readinessProbe, c.livenessProbe]) {
            const port = probe?.httpGet?.port;
            if (typeof port === 'string')
              assert.ok(
                c.ports?.some((p) => p.name === port),
                `${where}/${c.name}: probe port ${port} is declared`,
              );
          }
        }
        if (!PUENTE_SERVICES.includes(workload.metadata.name)) continue;
        const [c] = pod.containers;
        assert.equal(c!.image.split(':')[0], 'ghcr.io/example/puente', `${where}: the one Puente image`);
        assert.equal(
          c!.env?.find((e) => e.name === 'SERVICE')?.value,
          workload.metadata.name,
          `${where}: SERVICE picks the service`,
        );
        assert.equal(c!.readinessProbe?.httpGet?.path, '/readyz', `${where}: readiness on /readyz`);
        assert.equal(c!.livenessProbe?.httpGet?.path, '/healthz', `${where}: liveness on /healthz`);
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: non-root`);
        assert.equal(c!.securityContext?.readOnlyRootFilesystem, true, `${where}: read-only root file system`);
        assert.equal(c!.securityContext?.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
        assert.ok(
          (pod.terminationGracePeriodSeconds ?? 30) > drain,
          `${where}: grace ${pod.terminationGracePeriodSeconds}s > SHUTDOWN_TIMEOUT ${drain}s`,
        );
        const sources = c!.envFrom?.map((e) => e.configMapRef?.name ?? e.secretRef?.name) ?? [];
        assert.equal(sources.length, 2, `${where}: config and secrets`);
        assert.equal(sources[0], 'puente-config', `${where}: config first`);
        assert.match(
          sources[1]!,
          /^puente-secrets(-[a-z0-9]+)?$/,
          `${where}: then secrets, which win (dev's is generated with a hash suffix)`,
        );
      }
    }
  });

  test('every Deployment has a disruption budget, gateway and realtime autoscale, and every Service, budget and autoscaler points at something that exists', () => {
    for (const overlay of overlays) {
      const pods = workloads(overlay);
      const deployments = objects(overlay, 'Deployment') as Workload[];
      const budgets = objects(overlay, 'PodDisruptionBudget') as (KubeObject & {
        spec: { selector: { matchLabels: Record<string, string> } };
      })[];
      for (const d of deployments.filter((x) => [...PUENTE_SERVICES, 'otel-collector'].includes(x.metadata.name)))
        assert.ok(
          budgets.some((b) => matches(b.spec.selector.matchLabels, d.spec.template.metadata.labels)),
          `${overlay}: a budget for ${d.metadata.name}`,
        );
      for (const b of budgets)
        assert.ok(
          pods.some((w) => matches(b.spec.selector.matchLabels, w.spec.template.metadata.labels)),
          `${overlay}: budget ${b.metadata.name} selects pods`,
        );
      const hpas = objects(overlay, 'HorizontalPodAutoscaler') as (KubeObject & {
        spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number };
      })[];
      assert.deepEqual(hpas.map((h) => h.spec.scaleTargetRef.name).sort(), ['gateway', 'realtime']);
      for (const h of hpas) {
        const target = deployments.find((d) => d.metadata.name === h.spec.scaleTargetRef.name);
        assert.ok(target, `${overlay}: HPA ${h.metadata.name} targets a Deployment`);
        assert.ok(
          target.spec.template.spec.containers.every((c) => c.resources?.requests?.cpu),
          `${overlay}: HPA target has cpu requests`,
        );
        assert.ok(h.spec.minReplicas <= h.spec.maxReplicas);
      }
      for (const service of objects(overlay, 'Service') as (KubeObject & {
        spec: { selector: Record<string, string>; ports: { targetPort?: string | number }[] };
      })[]) {
        const backing = pods.filter((w) => matches(service.spec.selector, w.spec.template.metadata.labels));
        assert.ok(backing.length > 0, `${overlay}: Service ${service.metadata.name} selects pods`);
        for (const port of service.spec.ports) {
          if (typeof port.targetPort === 'string')
            assert.ok(
              backing.some((w) =>
                w.spec.template.spec.containers.some((c) => c.ports?.some((p) => p.name === port.targetPort)),
              ),
              `${overlay}: Service ${service.metadata.name} port ${port.targetPort}`,
            );
        }
      }
      const configMaps = new Map(
        (objects(overlay, 'ConfigMap') as (KubeObject & { data: Record<string, string> })[]).map((c) => [
          c.metadata.name,
          c.data,
        ]),
      );
      for (const w of pods) {
        for (const c of w.spec.template.spec.containers) {
          for (const e of c.env ?? []) {
            const ref = e.valueFrom?.configMapKeyRef;
            if (ref)
              assert.ok(
                configMaps.get(ref.name)?.[ref.key] !== undefined,
                `${overlay} ${w.metadata.name}: ${ref.name}.${ref.key} exists`,
              );
          }
        }
      }
    }
    assert.ok(
      objects('dev', 'Secret').some((s) => s.metadata.name.startsWith('puente-secrets')),
      'dev generates its development secrets',
    );
    assert.ok(!objects('prod', 'Secret').length, 'prod carries no secret: it is created out of band');
  });

  test('NATS: the dev, prod and compose configurations pass nats-server -t with max_payload for the largest webhook and sync every write; prod is a three-node cluster and the services replicate three times', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'puente-nats-conf-'));
    const natsServer = await ensureNatsServer(() => undefined);
    try {
      const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
        configs: Record<string, { content: string }>;
      };
      const configs: [string, string][] = [
        ...overlays.map((o): [string, string] => [
          o,
          (
            objects(o, 'ConfigMap').find((c) => c.metadata.name === 'nats-config') as unknown as {
              data: Record<string, string>;
            }
          ).data['nats.conf']!,
        ]),
        ['compose', compose.configs['nats-conf']!.content],
      ];
      for (const [where, text] of configs) {
        const file = join(dir, `${where}.conf`);
        writeFileSync(file, text);
        const { stderr } = await promisify(execFile)(natsServer, ['-t', '-c', file], {
          env: { ...process.env, POD_NAME: 'nats-0' },
        }).catch((error: { stderr: string }) => assert.fail(`${where}: nats-server -t refused it: ${error.stderr}`));
        assert.doesNotMatch(stderr, /error/i, where);
        const payload = /max_payload:\s*(\d+)(MB)?/.exec(text);
        assert.ok(payload, `${where}: sets max_payload`);
        assert.ok(
          Number(payload[1]) * (payload[2] ? 1024 * 1024 : 1) >= MIN_MAX_PAYLOAD,
          `${where}: max_payload fits a 4 MB webhook with headers`,
        );
        assert.match(text, /jetstream/, `${where}: JetStream on`);
        // Acknowledged means on disk: every write synced before JetStream acknowledges it.
        assert.match(text, /^\s*sync_interval:\s*always\s*$/m, `${where}: sync_interval always`);
      }
      const prodNats = workloads('prod').find((w) => w.metadata.name === 'nats')!;
      assert.equal(prodNats.spec.replicas, 3);
      const routes = configs.find(([w]) => w === 'prod')![1].match(/nats:\/\/nats-\d\.nats-cluster:6222/g) ?? [];
      assert.equal(routes.length, 3, 'routes to all three nodes');
      const prodConfig = objects('prod', 'ConfigMap').find((c) => c.metadata.name === 'puente-config') as unknown as {
        data: Record<string, string>;
      };
      assert.equal(prodConfig.data.NATS_REPLICAS, '3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docker-compose.yml (offline)', () => {
  test(`validates against the Compose Specification (compose-go ${ManifestTools.composeGo}); every Puente service has a health check and waits for healthy infrastructure; MongoDB is a replica set`, async () => {
    const schema = await ComposeSchema.load();
    assert.ok(
      schema.validate({ services: { a: { image: 1, helthcheck: {} } } }).length >= 2,
      'the validator catches a typo and a wrong type',
    );
    const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<
        string,
        {
          healthcheck?: { test: string[] };
          depends_on?: Record<string, { condition: string }>;
          environment?: Record<string, string>;
          command?: string[];
          image?: string;
          volumes?: string[];
        }
      >;
    };
    assert.deepEqual(schema.validate(compose), []);
    for (const name of PUENTE_SERVICES) {
      const service = compose.services[name];
      assert.ok(service, name);
      assert.equal(service.environment?.SERVICE, name);
      assert.ok(service.healthcheck?.test.join(' ').includes('/readyz'), `${name}: health check on /readyz`);
      assert.ok(service.environment?.PORT_FOR_HEALTH, `${name}: the port its health check asks`);
      for (const infra of ['nats', 'mongo'])
        assert.equal(service.depends_on?.[infra]?.condition, 'service_healthy', `${name} waits for ${infra}`);
      assert.match(service.environment?.MONGO_URL ?? '', /replicaSet=rs0/);
    }
    for (const infra of ['nats', 'mongo', 'glyms'])
      assert.ok(compose.services[infra]?.healthcheck, `${infra}: health check`);
    assert.deepEqual(compose.services.mongo!.command?.slice(0, 3), ['mongod', '--replSet', 'rs0']);
    assert.ok(compose.services.glyms!.command?.includes('wal_level=logical'));
    assert.ok(
      compose.services.glyms!.volumes?.some((v) =>
        v.startsWith('./deploy/k8s/overlays/dev/glyms-demo.sql:/docker-entrypoint-initdb.d/'),
      ),
      'the demo schema on first start',
    );
    assert.ok(compose.services.jaeger, 'Jaeger');
  });
});

describe('Dockerfile (offline)', () => {
  test('the build stage has every workspace the TypeScript build references; the image runs as non-root, each service from its compiled main', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const stages = dockerfile.split(/^FROM /m).slice(1);
    assert.equal(stages.length, 2, 'multi-stage: build, then run');
    const copied = [...stages[0]!.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)].flatMap((m) => m[1]!.split(' '));
    const references = (
      JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { references: { path: string }[] }
    ).references.map((r) => r.path);
    for (const path of references)
      assert.ok(
        copied.some((c) => path === c || path.startsWith(`${c}/`)),
        `the build stage copies ${path} (tsc -b builds it)`,
      );
    const run = stages[1]!;
    assert.match(run, /^USER node$/m, 'runs as the unprivileged node user');
    assert.doesNotMatch(
      run,
      /COPY --from=build \/app\/(test|bench|libs|services|cli) /,
      'no sources, tests or benchmarks in the image: the workspaces come from deploy/image-files.sh',
    );
    assert.match(
      stages[0]!,
      /^RUN sh deploy\/image-files\.sh \/out\b/m,
      'the build stage assembles what runs with deploy/image-files.sh',
    );
    for (const dir of ['libs', 'services', 'cli'])
      assert.match(run, new RegExp(`COPY --from=build /out/${dir} `), `the image has ${dir}`);
    assert.match(run, /COPY --from=build \/app\/node_modules /);
    assert.match(run, /services\/\$SERVICE\/dist\/main\.js/);
    for (const service of PUENTE_SERVICES)
      assert.ok(existsSync(join(root, 'services', service, 'src', 'main.ts')), `${service} has a main`);
  });

  test('the image ships compiled code only (no sources, tests, fixtures or local stack), and every service and the CLI load from it', async () => {
    const dest = mkdtempSync(join(tmpdir(), 'puente-image-'));
    try {
      await promisify(execFile)('sh', [join(root, 'deploy/image-files.sh'), dest], { cwd: root });
      // The root node_modules as the image has it: third-party packages as installed, workspace links into the
      // copied tree, and no links to the stack, the end-to-end tests or the benchmarks.
      mkdirSync(join(dest, 'node_modules', '@puente'), { recursive: true });
      for (const entry of readdirSync(join(root, 'node_modules'))) {
        if (entry !== '@puente') symlinkSync(join(root, 'node_modules', entry), join(dest, 'node_modules', entry));
      }
      for (const link of readdirSync(join(root, 'node_modules', '@puente'))) {
        if (!['stack', 'e2e', 'bench'].includes(link))
          symlinkSync(
            readlinkSync(join(root, 'node_modules', '@puente', link)),
            join(dest, 'node_modules', '@puente', link),
          );
      }
      const { stdout } = await promisify(execFile)('find', [
        dest,
        '-path',
        join(dest, 'node_modules'),
        '-prune',
        '-o',
        '-path',
        '*/node_modules/*',
        '-prune',
        '-o',
        '-type',
        'f',
        '-print',
      ]);
      const files = stdout
        .split('\n')
        .filter(Boolean)
        .map((f) => f.slice(dest.length + 1));
      const shipped = (pattern: RegExp) => files.filter((f) => pattern.test(f));
      assert.deepEqual(shipped(/(^|\/)src\//), [], 'no sources');
      assert.deepEqual(shipped(/\.test\.js$|(^|\/)testing(\/|\.js$)/), [], 'no tests or fixtures');
      assert.deepEqual(shipped(/^(libs\/stack|test|bench)\//), [], 'no local stack, end-to-end tests or benchmarks');
      assert.deepEqual(shipped(/\.(ts|map|tsbuildinfo)$/), [], 'no declarations, maps or build caches');
      for (const service of PUENTE_SERVICES)
        assert.ok(files.includes(`services/${service}/dist/main.js`), `${service} has its main`);
      // Each service's package entry and the CLI's commands load with what is shipped (an import of a stripped
      // file, of the stack or of a test fixture fails here).
      const entries = [...PUENTE_SERVICES.map((service) => `services/${service}`), 'cli'].map((dir) => {
        const pkg = JSON.parse(readFileSync(join(dest, dir, 'package.json'), 'utf8')) as {
          exports?: { '.': { default: string } };
          main?: string;
        };
        return join(dest, dir, pkg.exports?.['.'].default ?? 'dist/main.js');
      });
      const script = `for (const file of ${JSON.stringify(entries.filter((f) => !f.endsWith(join('cli', 'dist', 'main.js'))))}) await import(file);`;
      await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        cwd: dest,
        env: { ...process.env, NODE_ENV: 'production' },
      });
      const usage = await promisify(execFile)(process.execPath, [join(dest, 'cli', 'bin', 'puente.js'), 'help'], {
        cwd: dest,
      }).then(
        (r) => r.stdout,
        (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
      );
      assert.match(usage, /replay/, 'the CLI runs from the image and prints its commands');
      assert.doesNotMatch(usage, /not built yet|ERR_MODULE_NOT_FOUND|Cannot find/);
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });
});

describe('Glyms demo schema', () => {
  test('deploy/k8s/overlays/dev/glyms-demo.sql is what npm start runs, and loads twice into a fresh database with the seed rows once', async () => {
    const file = readFileSync(join(k8s, 'overlays/dev/glyms-demo.sql'), 'utf8');
    assert.equal(
      file,
      glymsDemoSql(),
      'regenerate it: node -e "import(\'@puente/stack\').then((m) => process.stdout.write(m.glymsDemoSql()))" > deploy/k8s/overlays/dev/glyms-demo.sql',
    );
    const server = postgresServerUrl(process.env);
    const name = uniqueName('glyms_demo_')
      .toLowerCase()
      .replace(/[^a-z0-9_]/g, '_');
    const client = new pg.Client({ connectionString: await ensureDatabase(server, name) });
    await client.connect();
    try {
      await client.query(file);
      await client.query(file);
      const count = async (table: string) =>
        Number((await client.query(`select count(*)::int as n from ${table}`)).rows[0].n);
      assert.equal(await count('public.cliente'), 3);
      assert.equal(await count('public.servicio'), 4);
      assert.equal(await count('f_cliente.sync_log_bitrix24'), 0);
    } finally {
      await client.end();
      const admin = new pg.Client({ connectionString: `${server}/postgres` });
      await admin.connect();
      await admin.query(`drop database if exists ${pg.escapeIdentifier(name)}`).finally(() => admin.end());
    }
  });
});

describe('NATS JetStream cluster (the prod topology, on loopback)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'puente-nats-cluster-'));
  const nodes: Awaited<ReturnType<typeof startNats>>[] = [];
  let bus: Bus;
  before(async () => {
    const routes = [await freePort(), await freePort(), await freePort()];
    for (const [i, route] of routes.entries()) {
      nodes.push(
        await startNats({
          dir: join(dir, `n${i}`),
          port: await freePort(),
          monitorPort: await freePort(),
          log: () => undefined,
          cluster: { serverName: `n${i}`, port: route, routes },
        }),
      );
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        // JetStream answers once the three nodes have elected a meta leader.
        bus = await Bus.connect({
          servers: nodes.map((n) => n.url),
          name: 'cluster-test',
          replicas: 3,
          publishTimeoutMs: 2_000,
        });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  });
  after(async () => {
    await bus?.close();
    for (const node of nodes) await node.process.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('with replicas 3 every stream and bucket has three copies, and a publish is still acknowledged with one node down', async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await bus.ensureStreams();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    for (const name of Object.keys(StreamDefinitions)) {
      const info = await bus.jsm.streams.info(name);
      assert.equal(info.config.num_replicas, 3, name);
    }
    const kv = await bus.kv(uniqueName('cluster_kv_'), { history: 1 });
    assert.equal((await kv.status()).replicas, 3);
    const before = await bus.publish('evt.test.cluster.one', { n: 1 }, { msgId: uniqueName('c1-') });
    assert.equal(before.stream, StreamNames.EVENTS);

    await nodes[2]!.process.stop();
    const deadline2 = Date.now() + 30_000;
    for (;;) {
      try {
        const ack = await bus.publish('evt.test.cluster.two', { n: 2 }, { msgId: uniqueName('c2-') });
        assert.ok(ack.seq > before.seq, 'acknowledged by the remaining quorum');
        break;
      } catch (error) {
        // A stream whose leader was on the stopped node elects another one first.
        if (Date.now() > deadline2) throw error;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const info = await bus.jsm.streams.info(StreamNames.EVENTS);
    assert.ok(
      info.cluster?.leader && info.cluster.leader !== 'n2',
      `a leader on a live node (${info.cluster?.leader})`,
    );
    assert.equal(info.state.messages >= 2, true);
  });
});
