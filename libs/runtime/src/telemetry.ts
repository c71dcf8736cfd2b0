import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { MongoDBInstrumentation } from '@opentelemetry/instrumentation-mongodb';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export interface Telemetry {
  /** `otlp` when traces are exported, `local` when spans only give logs their trace ids. */
  readonly mode: 'otlp' | 'local';
  shutdown(): Promise<void>;
}

/** True when the standard OTEL_* variables ask for traces to be exported. */
export function exportRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_TRACES_EXPORTER);
}

/** The traces endpoint from the given environment (the exporter would otherwise read process.env). */
function otlpTracesUrl(env: NodeJS.ProcessEnv): { url: string } | undefined {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return { url: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT };
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT)
    return { url: `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces` };
  return undefined;
}

/**
 * Starts OpenTelemetry from the standard OTEL_* variables. With an OTLP endpoint it exports traces
 * (HTTP and MongoDB instrumented, NATS hops by libs/bus); with none it is silent: spans are still
 * created and W3C trace context still propagates, so every log line and every message keeps its trace id.
 */
export function startTelemetry(service: string, env: NodeJS.ProcessEnv): Telemetry {
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? `puente-${service}` });
  if (exportRequested(env)) {
    const sdk = new NodeSDK({
      resource,
      traceExporter: new OTLPTraceExporter(otlpTracesUrl(env)),
      instrumentations: [new HttpInstrumentation(), new MongoDBInstrumentation()],
    });
    sdk.start();
    return { mode: 'otlp', shutdown: () => sdk.shutdown() };
  }
  const provider = new NodeTracerProvider({ resource });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    mode: 'local',
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
