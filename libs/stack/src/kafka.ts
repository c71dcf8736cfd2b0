import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { aptInstall, cacheDir, findBinary } from './binaries.js';
import { run, spawnServer, StackError } from './processes.js';
import type { RunningServer } from './servers.js';

type Log = (line: string) => void;

/** Pinned versions of what the stack resolves from Maven Central for the Debezium path. */
export const KafkaVersions = {
  kafka: '3.9.1',
  scala: '2.13',
  /** Kafka 3.9 logs through log4j 1.x; reload4j is its maintained drop-in, bound to SLF4J 1.7. */
  slf4j: '1.7.36',
  mavenDependencyPlugin: '3.8.1',
} as const;

/** A Maven artifact, as `groupId:artifactId:version`. */
export type MavenCoordinate = `${string}:${string}:${string}`;

/** The jars of a resolved runtime and the classpath that runs it. */
export interface JavaRuntime {
  /** Folder holding every jar. */
  libDir: string;
  /** `<libDir>/*`: the JVM expands it to every jar in the folder. */
  classpath: string;
  /** The `java` executable. */
  java: string;
}

/** The broker's Maven coordinates: the server itself and the SLF4J binding it needs to log at all. */
export const KAFKA_ARTIFACTS: readonly MavenCoordinate[] = [
  `org.apache.kafka:kafka_${KafkaVersions.scala}:${KafkaVersions.kafka}`,
  `org.slf4j:slf4j-reload4j:${KafkaVersions.slf4j}`,
];

const resolving = new Map<string, Promise<JavaRuntime>>();

/** `java` from PATH, installed with apt-get (as root) when missing. */
async function ensureJava(log: Log): Promise<string> {
  const found = findBinary('java');
  if (found) return found;
  if (process.getuid?.() !== 0)
    throw new StackError(
      'java is not installed: install a Java 17+ runtime (Debian: sudo apt-get install -y default-jre-headless) or set KAFKA_BROKERS',
    );
  log('installing a Java runtime with apt-get (once)');
  await aptInstall('default-jre-headless', 'install Java 17+ by hand or set KAFKA_BROKERS');
  const installed = findBinary('java');
  if (!installed) throw new StackError('apt-get installed default-jre-headless but no java is on PATH');
  return installed;
}

/** `mvn` from PATH, installed with apt-get (as root) when missing. */
async function ensureMaven(log: Log): Promise<string> {
  const found = findBinary('mvn');
  if (found) return found;
  if (process.getuid?.() !== 0)
    throw new StackError(
      'mvn is not installed: install Maven (Debian: sudo apt-get install -y maven) or set KAFKA_BROKERS',
    );
  log('installing Maven with apt-get (once)');
  await aptInstall('maven', 'install Maven by hand or set KAFKA_BROKERS');
  const installed = findBinary('mvn');
  if (!installed) throw new StackError('apt-get installed maven but no mvn is on PATH');
  return installed;
}

function pom(artifacts: readonly MavenCoordinate[]): string {
  const dependencies = artifacts.map((coordinate) => {
    const [groupId, artifactId, version] = coordinate.split(':');
    return `    <dependency><groupId>${groupId}</groupId><artifactId>${artifactId}</artifactId><version>${version}</version></dependency>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<project xmlns="http://maven.apache.org/POM/4.0.0">',
    '  <modelVersion>4.0.0</modelVersion>',
    '  <groupId>dev.puente.stack</groupId>',
    '  <artifactId>runtime</artifactId>',
    '  <version>1</version>',
    '  <packaging>pom</packaging>',
    '  <dependencies>',
    ...dependencies,
    '  </dependencies>',
    '</project>',
    '',
  ].join('\n');
}

/**
 * The runtime jars of `artifacts` (with their transitive dependencies) in `<cache>/<name>/libs`,
 * resolved once from Maven Central with `mvn dependency:copy-dependencies` on a generated pom. Maven
 * keeps its own local repository (~/.m2), so a second runtime sharing jars downloads nothing again.
 * The jars land in a scratch folder that is renamed into place when complete, so an interrupted
 * download is never mistaken for a runtime.
 */
export function ensureMavenRuntime(
  name: string,
  artifacts: readonly MavenCoordinate[],
  log: Log,
): Promise<JavaRuntime> {
  let pending = resolving.get(name);
  if (!pending) {
    pending = resolveRuntime(name, artifacts, log);
    // A failed resolution is retried by the next caller instead of being remembered.
    pending.catch(() => resolving.delete(name));
    resolving.set(name, pending);
  }
  return pending;
}

async function resolveRuntime(name: string, artifacts: readonly MavenCoordinate[], log: Log): Promise<JavaRuntime> {
  const java = await ensureJava(log);
  const home = join(cacheDir(), name);
  const libDir = join(home, 'libs');
  const runtime = { libDir, classpath: join(libDir, '*'), java };
  if (existsSync(join(libDir, '.complete'))) return runtime;
  const mvn = await ensureMaven(log);
  log(`resolving ${name} from Maven Central with mvn (once; cached in ${home})`);
  mkdirSync(home, { recursive: true });
  const scratch = join(home, `libs.${process.pid}.${randomBytes(4).toString('hex')}`);
  const pomFile = join(home, `pom.${process.pid}.xml`);
  writeFileSync(pomFile, pom(artifacts));
  try {
    await run(mvn, [
      '-B',
      '-q',
      '-f',
      pomFile,
      `org.apache.maven.plugins:maven-dependency-plugin:${KafkaVersions.mavenDependencyPlugin}:copy-dependencies`,
      `-DoutputDirectory=${scratch}`,
      '-DincludeScope=runtime',
    ]);
    if (!readdirSync(scratch).some((file) => file.endsWith('.jar'))) throw new Error('no jar was copied');
    writeFileSync(join(scratch, '.complete'), `${artifacts.join('\n')}\n`);
    if (existsSync(join(libDir, '.complete'))) {
      // Another process finished first; its copy is as good as ours.
      rmSync(scratch, { recursive: true, force: true });
    } else {
      rmSync(libDir, { recursive: true, force: true });
      renameSync(scratch, libDir);
    }
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    throw new StackError(
      `could not resolve ${name} from Maven Central (${(error as Error).message.split('\n')[0]}); check access to Maven Central or set KAFKA_BROKERS`,
    );
  } finally {
    rmSync(pomFile, { force: true });
  }
  return runtime;
}

/** Kafka 3.9.x (broker, KRaft controller and storage tool) from Maven Central, cached after the first call. */
export function ensureKafka(log: Log): Promise<JavaRuntime> {
  return ensureMavenRuntime(`kafka-${KafkaVersions.kafka}`, KAFKA_ARTIFACTS, log);
}

/**
 * A KRaft cluster id as `kafka-storage random-uuid` makes one: 16 random bytes in URL-safe base64
 * without padding, drawn again when it starts with `-`, which the tool's argument parser would take
 * for an option (Kafka's own `Uuid.randomUuid` does the same).
 */
export function kafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** The log4j 1.x configuration of a Kafka JVM: to stdout (the process log), Kafka's chatty internals at WARN. */
export const KAFKA_LOG4J = [
  'log4j.rootLogger=INFO, stdout',
  'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
  'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
  'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
  'log4j.logger.kafka=WARN',
  'log4j.logger.org.apache.kafka=WARN',
  'log4j.logger.state.change.logger=WARN',
  // The one line that says the server is up stays visible.
  'log4j.logger.kafka.server.KafkaRaftServer=INFO',
  '',
].join('\n');

/** JVM options of the servers this stack starts: a small heap, since the tests send little. */
export const KAFKA_JVM_OPTIONS = ['-Xms64m', '-Xmx512m', '-XX:+UseSerialGC', '-Djava.awt.headless=true'] as const;

/** True once a Kafka admin client can list the topics of `brokers`. */
export async function kafkaAnswers(brokers: string[]): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'puente-stack',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * A single-node Kafka in KRaft mode (one JVM is broker and controller), listening on 127.0.0.1 only,
 * with its storage formatted under `dir` on first start. Internal topics have one replica, topics are
 * created on first use, and a new consumer group starts without the usual 3 s rebalance delay. The
 * process runs under the stack's guard, so it never outlives the tool that started it. `url` is the
 * bootstrap address (`host:port`, what `KAFKA_BROKERS` holds).
 */
export async function startKafka(options: {
  dir: string;
  port: number;
  controllerPort: number;
  log: Log;
}): Promise<RunningServer> {
  const runtime = await ensureKafka(options.log);
  const dataDir = join(options.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const propertiesFile = join(options.dir, 'server.properties');
  const log4jFile = join(options.dir, 'log4j.properties');
  writeFileSync(
    propertiesFile,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${options.controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${options.port},CONTROLLER://127.0.0.1:${options.controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${options.port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${dataDir}`,
      'num.partitions=1',
      'default.replication.factor=1',
      'auto.create.topics.enable=true',
      'offsets.topic.replication.factor=1',
      // One partition each: the default 50 make the first consumer group wait for 50 partitions to load.
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=1',
      'group.initial.rebalance.delay.ms=0',
      '',
    ].join('\n'),
  );
  writeFileSync(log4jFile, KAFKA_LOG4J);
  const jvm = [...KAFKA_JVM_OPTIONS, `-Dlog4j.configuration=file:${log4jFile}`, '-cp', runtime.classpath];
  if (!existsSync(join(dataDir, 'meta.properties'))) {
    await run(runtime.java, [
      ...jvm,
      'kafka.tools.StorageTool',
      'format',
      '--ignore-formatted',
      '-t',
      kafkaClusterId(),
      '-c',
      propertiesFile,
    ]).catch((error: Error) => {
      throw new StackError(`formatting Kafka's storage in ${dataDir} failed (${error.message.split('\n')[0]})`);
    });
  }
  const url = `127.0.0.1:${options.port}`;
  const process_ = await spawnServer({
    name: 'kafka',
    command: runtime.java,
    args: [...jvm, 'kafka.Kafka', propertiesFile],
    logFile: join(options.dir, 'kafka.log'),
    ready: () => kafkaAnswers([url]),
    readyTimeoutMs: 90_000,
  });
  return { url, process: process_ };
}

/** Pinned versions of Kafka Connect's Debezium PostgreSQL connector. */
export const DebeziumVersions = {
  /** Debezium 3.1 is built against Kafka 3.9 and runs on Java 17. */
  connectorPostgres: '3.1.3.Final',
} as const;

/** Kafka Connect (runtime and JSON converter) and Debezium's PostgreSQL connector, on one classpath. */
export const DEBEZIUM_CONNECT_ARTIFACTS: readonly MavenCoordinate[] = [
  `org.apache.kafka:connect-runtime:${KafkaVersions.kafka}`,
  `org.apache.kafka:connect-json:${KafkaVersions.kafka}`,
  `io.debezium:debezium-connector-postgres:${DebeziumVersions.connectorPostgres}`,
  `org.slf4j:slf4j-reload4j:${KafkaVersions.slf4j}`,
];

/** Kafka Connect with Debezium's PostgreSQL connector from Maven Central, cached after the first call. */
export function ensureDebeziumConnect(log: Log): Promise<JavaRuntime> {
  return ensureMavenRuntime(
    `debezium-connect-${DebeziumVersions.connectorPostgres}-kafka-${KafkaVersions.kafka}`,
    DEBEZIUM_CONNECT_ARTIFACTS,
    log,
  );
}

/** One Debezium PostgreSQL connector: the database it reads and how it names what it writes. */
export interface DebeziumConnectorOptions {
  /** The connector's name in Connect (also names its offsets). */
  name: string;
  /** `postgres://user[:password]@host:port/database`. */
  databaseUrl: string;
  /** `topic.prefix`: topics are `<prefix>.<schema>.<table>`. */
  topicPrefix: string;
  /** `slot.name`: one per connector (lower-case letters, digits, `_`). */
  slotName: string;
  /** `publication.name` (default `<slot>_pub`); created for just these tables (`publication.autocreate.mode=filtered`). */
  publicationName?: string;
  /** `table.include.list`, as `schema.table`. */
  tables: readonly string[];
  /** Further connector properties (e.g. `decimal.handling.mode`), over the defaults. */
  properties?: Readonly<Record<string, string>>;
}

/** The connector's properties: pgoutput (no server plugin to install), a publication of its own tables only. */
export function debeziumConnectorProperties(options: DebeziumConnectorOptions): Record<string, string> {
  const url = new URL(options.databaseUrl);
  return {
    name: options.name,
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max': '1',
    'plugin.name': 'pgoutput',
    'database.hostname': url.hostname,
    'database.port': url.port || '5432',
    'database.user': decodeURIComponent(url.username || 'postgres'),
    'database.password': decodeURIComponent(url.password),
    'database.dbname': decodeURIComponent(url.pathname.replace(/^\//, '')),
    'topic.prefix': options.topicPrefix,
    'slot.name': options.slotName,
    'publication.name': options.publicationName ?? `${options.slotName}_pub`,
    'publication.autocreate.mode': 'filtered',
    'table.include.list': options.tables.join(','),
    'snapshot.mode': 'initial',
    ...options.properties,
  };
}

/** Java properties text (values escaped as `java.util.Properties` reads them). */
function propertiesText(properties: Record<string, string>): string {
  const escape = (value: string) =>
    value
      .replace(/\\/g, '\\\\')
      .replace(/\n/g, '\\n')
      .replace(/^\s/, (c) => `\\${c}`);
  return `${Object.entries(properties)
    .map(([key, value]) => `${key}=${escape(value)}`)
    .join('\n')}\n`;
}

interface ConnectorStatus {
  connector?: { state?: string };
  tasks?: { state?: string; trace?: string }[];
}

/**
 * Kafka Connect in standalone mode running one Debezium PostgreSQL connector against `brokers`, with
 * the JSON converter (schemas enabled, Connect's default), offsets in a file under `dir`, and its
 * REST API on 127.0.0.1:`restPort` (`url`). Ready when the connector and its task are RUNNING; a task
 * that FAILED stops the process and fails the call with Connect's trace. Guarded like every server of
 * the stack. The replication slot it creates stays behind: drop it (or the database) when done.
 */
export async function startDebeziumConnect(options: {
  dir: string;
  brokers: string;
  restPort: number;
  connector: DebeziumConnectorOptions;
  log: Log;
}): Promise<RunningServer> {
  const runtime = await ensureDebeziumConnect(options.log);
  mkdirSync(options.dir, { recursive: true });
  const workerFile = join(options.dir, 'worker.properties');
  const connectorFile = join(options.dir, 'connector.properties');
  const log4jFile = join(options.dir, 'log4j.properties');
  writeFileSync(
    workerFile,
    propertiesText({
      'bootstrap.servers': options.brokers,
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'offset.storage.file.filename': join(options.dir, 'connect.offsets'),
      'offset.flush.interval.ms': '1000',
      listeners: `http://127.0.0.1:${options.restPort}`,
      // Every plugin is on the classpath: nothing to scan for.
      'plugin.discovery': 'only_scan',
    }),
  );
  writeFileSync(connectorFile, propertiesText(debeziumConnectorProperties(options.connector)));
  writeFileSync(
    log4jFile,
    [
      ...KAFKA_LOG4J.split('\n').filter((line) => line && !line.startsWith('log4j.logger.kafka.server')),
      'log4j.logger.io.debezium=INFO',
      'log4j.logger.org.reflections=ERROR',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${options.restPort}`;
  let failure: string | undefined;
  const process_ = await spawnServer({
    name: 'kafka-connect',
    command: runtime.java,
    args: [
      ...KAFKA_JVM_OPTIONS,
      `-Dlog4j.configuration=file:${log4jFile}`,
      '-cp',
      runtime.classpath,
      'org.apache.kafka.connect.cli.ConnectStandalone',
      workerFile,
      connectorFile,
    ],
    logFile: join(options.dir, 'connect.log'),
    readyTimeoutMs: 120_000,
    ready: async () => {
      const response = await fetch(`${url}/connectors/${encodeURIComponent(options.connector.name)}/status`);
      if (!response.ok) return false;
      const status = (await response.json()) as ConnectorStatus;
      const failed = status.tasks?.find((task) => task.state === 'FAILED');
      if (failed || status.connector?.state === 'FAILED') {
        failure = failed?.trace?.split('\n').slice(0, 3).join(' ') ?? 'the connector FAILED';
        return true;
      }
      return (
        status.connector?.state === 'RUNNING' &&
        (status.tasks?.length ?? 0) > 0 &&
        status.tasks!.every((task) => task.state === 'RUNNING')
      );
    },
  });
  if (failure) {
    await process_.stop();
    throw new StackError(
      `the Debezium connector ${options.connector.name} failed: ${failure}; see ${process_.logFile}`,
    );
  }
  return { url, process: process_ };
}
