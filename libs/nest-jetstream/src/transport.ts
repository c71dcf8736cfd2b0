import 'reflect-metadata';
import {
  Catch,
  type ArgumentsHost,
  type DynamicModule,
  type INestMicroservice,
  type RpcExceptionFilter,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, type MicroserviceOptions } from '@nestjs/microservices';
import { throwError, type Observable } from 'rxjs';
import { BaseRpcContext, Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { decodeEvent, type ConsumerDefinition, type StreamName } from '@puente/contracts';
import {
  ConsumerRunner,
  perMessage,
  type BatchHandler,
  type Bus,
  type ConsumerRunnerOptions,
  type Delivery,
  type LoggerLike,
  type Outcome,
} from '@puente/bus';

/** Options a handler passes as `@EventPattern` extras. */
export interface JetStreamHandlerOptions {
  /** The durable consumer (name, stream, filters) from libs/contracts; default derived from the pattern. */
  consumer?: ConsumerDefinition;
  /** The name of a consumer bound when the service starts (`JetStreamTransportOptions.consumers`), instead of `consumer`. */
  slot?: string;
  /** Hand the handler whole batches (`Delivery[]`) and take its `Outcome[]`; default one decoded event at a time. */
  batch?: boolean;
  /** For one-at-a-time handlers: hand over the `Delivery` undecoded instead of a validated domain event. */
  raw?: boolean;
  runner?: Pick<
    ConsumerRunnerOptions,
    'maxAttempts' | 'backoffMs' | 'ackWaitMs' | 'batchSize' | 'maxAckPending' | 'lingerMs'
  >;
}

/** The context a handler can inject with `@Ctx()`: the delivery behind the event. */
export class JetStreamContext extends BaseRpcContext<[Delivery]> {
  get delivery(): Delivery {
    return this.getArgByIndex(0);
  }
}

/**
 * A consumer bound to a named handler when the service starts. A top-level controller's decorators run
 * once, when its module loads, so a consumer that depends on configuration (the sessions or datasets an
 * instance serves, a mapping's table, a wait from the environment) is named in the decorator and bound here.
 */
export interface ConsumerBinding {
  consumer: ConsumerDefinition;
  /** Runner options from configuration; they win over the decorator's. */
  runner?: JetStreamHandlerOptions['runner'];
}

/**
 * Declares a JetStream handler: `@OnJetStream(Consumers.kissflowRecords)`, or `@OnJetStream('records')`
 * for a consumer bound when the service starts (`startJetStreamService(module, { consumers: { records } })`),
 * or, for a bare subject, `@EventPattern('evt.kissflow.>')`.
 */
export function OnJetStream(
  consumer: ConsumerDefinition | string,
  options: Omit<JetStreamHandlerOptions, 'consumer' | 'slot'> = {},
): MethodDecorator {
  // Nest types an event handler's extra arguments as `unknown`; a handler here takes `@Ctx() JetStreamContext`.
  if (typeof consumer === 'string')
    return EventPattern(`slot:${consumer}`, { ...options, slot: consumer }) as MethodDecorator;
  return EventPattern(consumer.filterSubjects.join(','), { ...options, consumer }) as MethodDecorator;
}

export interface JetStreamTransportOptions {
  bus: Bus;
  /** Prefix of derived durable names. */
  service: string;
  logger?: LoggerLike;
  runner?: JetStreamHandlerOptions['runner'];
  /** The consumers of handlers declared by name (`@OnJetStream('name')`), by that name. */
  consumers?: Readonly<Record<string, ConsumerBinding>>;
}

/**
 * A NestJS transport strategy over JetStream durable pull consumers. Each `@EventPattern` handler gets
 * its own `ConsumerRunner`. NestJS swallows what event handlers throw (it only logs it), so this
 * strategy calls the handler itself and awaits the observable it returns: a rejection or an erroring
 * stream becomes a retry (or a dead letter for permanent errors), and only a completed handler acks.
 */
export class JetStreamTransport extends Server implements CustomTransportStrategy {
  private readonly runners: ConsumerRunner[] = [];

  constructor(private readonly options: JetStreamTransportOptions) {
    super();
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      for (const [pattern, handler] of this.messageHandlers) {
        if (!handler.isEventHandler)
          throw new Error(`${pattern}: JetStream handlers are events (@EventPattern), not request-response`);
        const extras = (handler.extras ?? {}) as JetStreamHandlerOptions;
        const binding = extras.slot === undefined ? undefined : this.options.consumers?.[extras.slot];
        if (extras.slot !== undefined && !binding)
          throw new Error(`${pattern}: no consumer bound to '${extras.slot}' (JetStreamTransportOptions.consumers)`);
        const consumer = binding?.consumer ??
          extras.consumer ?? {
            durable: `${this.options.service}-${pattern.replace(/[^A-Za-z0-9_-]+/g, '_')}`,
            stream: 'EVENTS' as StreamName,
            filterSubjects: pattern.split(','),
          };
        const runner = new ConsumerRunner({
          bus: this.options.bus,
          consumer,
          handle: extras.batch ? this.batchHandler(handler) : this.messageHandler(handler, extras.raw === true),
          ...(this.options.logger ? { logger: this.options.logger } : {}),
          ...this.options.runner,
          ...extras.runner,
          ...binding?.runner,
        });
        await runner.start();
        this.runners.push(runner);
      }
      callback();
    } catch (error) {
      callback(error);
    }
  }

  /** Every runner drains (bounded); messages not finished are redelivered to the next instance. */
  async close(): Promise<void> {
    await Promise.all(this.runners.splice(0).map((runner) => runner.stop()));
  }

  /** The runners' counters, for status and tests. */
  get stats(): { consumer: string; acked: number; retried: number; deadLettered: number }[] {
    return this.runners.map((r) => ({ consumer: r.name, ...r.stats }));
  }

  on(): never {
    throw new Error('JetStreamTransport has no events to listen to');
  }

  unwrap<T>(): T {
    return this.options.bus as T;
  }

  private async invoke(handler: MessageHandler, data: unknown, delivery: Delivery | Delivery[]): Promise<unknown> {
    const context = new JetStreamContext(Array.isArray(delivery) ? [delivery[0]!] : [delivery]);
    const result = await handler(data, context);
    return lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
  }

  private messageHandler(handler: MessageHandler, raw: boolean): BatchHandler {
    return perMessage(async (delivery) => {
      await this.invoke(handler, raw ? delivery : decodeEvent(delivery.data), delivery);
    });
  }

  private batchHandler(handler: MessageHandler): BatchHandler {
    return async (deliveries) => (await this.invoke(handler, deliveries, [...deliveries])) as Outcome[];
  }
}

/**
 * Nest's default RPC filter replaces any error with "Internal server error". This one passes the
 * original error on, so the transport can classify it (retry or dead letter) and the DLQ records it.
 */
@Catch()
export class PassErrorsToTransport implements RpcExceptionFilter<unknown> {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => exception);
  }
}

/** A Nest microservice on the JetStream transport, with errors passed through to it. */
export async function createJetStreamMicroservice(
  module: Type<unknown> | DynamicModule,
  transport: JetStreamTransport,
  options: { logger?: false | ('log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal')[] } = {},
): Promise<INestMicroservice> {
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(module, {
    strategy: transport,
    logger: options.logger ?? ['error', 'warn'],
  });
  app.useGlobalFilters(new PassErrorsToTransport());
  return app;
}

/**
 * Starts a module as a JetStream microservice for a service; `stop` drains every consumer. A dynamic
 * module carries the providers its composition root built (`useValue`) to its top-level controllers.
 */
export async function startJetStreamService(
  module: Type<unknown> | DynamicModule,
  options: JetStreamTransportOptions,
): Promise<{ stop: () => Promise<void>; transport: JetStreamTransport }> {
  const transport = new JetStreamTransport(options);
  const app = await createJetStreamMicroservice(module, transport);
  await app.listen();
  return { transport, stop: () => app.close() };
}
