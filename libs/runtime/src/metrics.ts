import type { IncomingMessage, ServerResponse } from 'node:http';
import { metrics } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

let prometheus: PrometheusExporter | undefined;

/** Answers `GET /metrics` (Prometheus text) when metrics were started in this process. */
export function handleMetrics(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') return false;
  if (!prometheus) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('metrics are not started in this process\n');
    return true;
  }
  prometheus.getMetricsRequestHandler(req, res);
  return true;
}

/** True when the standard OTEL_* variables ask for metrics to be exported over OTLP. */
function otlpMetricsUrl(env: NodeJS.ProcessEnv): string | undefined {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_METRICS_EXPORTER === 'none') return undefined;
  if (env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) return env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/metrics`;
  return undefined;
}

/**
 * The process's OpenTelemetry meter provider: always scrapeable as Prometheus text at `/metrics` on the
 * service's HTTP port, and pushed over OTLP every `OTEL_METRIC_EXPORT_INTERVAL` ms (default 15 s) when
 * an OTLP endpoint is configured. Instruments created with `metrics.getMeter()` anywhere report here.
 */
export function startMetrics(service: string, env: NodeJS.ProcessEnv): { shutdown: () => Promise<void> } {
  prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: MetricReader[] = [prometheus];
  const url = otlpMetricsUrl(env);
  if (url)
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url }),
        exportIntervalMillis: Number(env.OTEL_METRIC_EXPORT_INTERVAL ?? 15_000),
      }),
    );
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? `puente-${service}` }),
    readers,
  });
  metrics.setGlobalMeterProvider(provider);
  return {
    shutdown: async () => {
      await provider.shutdown().catch(() => undefined);
      metrics.disable();
      prometheus = undefined;
    },
  };
}
