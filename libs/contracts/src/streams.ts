/** Stream names: the only place they are spelled. */
export const StreamNames = {
  EVENTS: 'EVENTS',
  COMMANDS: 'COMMANDS',
  CHANGES: 'CHANGES',
  WEBHOOKS_RAW: 'WEBHOOKS_RAW',
  DLQ: 'DLQ',
} as const;
export type StreamName = (typeof StreamNames)[keyof typeof StreamNames];

/** A stream's intent, independent of the client library; `libs/bus` turns it into JetStream config. */
export interface StreamDefinition {
  readonly name: StreamName;
  readonly subjects: readonly string[];
  readonly description: string;
  readonly retention: 'limits' | 'workqueue';
  /** 0 means no age limit. */
  readonly maxAgeMs: number;
  /** -1 means no size limit. */
  readonly maxBytes: number;
  readonly duplicateWindowMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Defaults; every limit can be overridden through configuration (see docs/configuration.md). */
export const StreamDefinitions: Record<StreamName, StreamDefinition> = {
  EVENTS: {
    name: 'EVENTS',
    subjects: ['evt.>'],
    description: 'The event log. Unlimited by default: a read model can only be rebuilt from what the log still holds.',
    retention: 'limits',
    maxAgeMs: 0,
    maxBytes: -1,
    duplicateWindowMs: 10 * MINUTE,
  },
  COMMANDS: {
    name: 'COMMANDS',
    subjects: ['cmd.>'],
    description: 'Work queue of commands; old commands expire so a recreated consumer never replays them.',
    retention: 'workqueue',
    maxAgeMs: DAY,
    maxBytes: -1,
    duplicateWindowMs: 10 * MINUTE,
  },
  CHANGES: {
    name: 'CHANGES',
    subjects: ['chg.>'],
    description: 'Read-model change notices; a bounded window that WebSocket clients resume from.',
    retention: 'limits',
    maxAgeMs: DAY,
    maxBytes: 1024 * 1024 * 1024,
    duplicateWindowMs: 10 * MINUTE,
  },
  WEBHOOKS_RAW: {
    name: 'WEBHOOKS_RAW',
    subjects: ['raw.>'],
    description: 'Every verified webhook body with its non-secret headers, for inspection and re-normalization.',
    retention: 'limits',
    maxAgeMs: 7 * DAY,
    maxBytes: 2 * 1024 * 1024 * 1024,
    duplicateWindowMs: 10 * MINUTE,
  },
  DLQ: {
    name: 'DLQ',
    subjects: ['dlq.>', 'redrive.>'],
    description:
      'Dead letters (dlq.<consumer>.<original subject>) and their redrives (redrive.<consumer>.<original subject>).',
    retention: 'limits',
    maxAgeMs: 30 * DAY,
    maxBytes: -1,
    duplicateWindowMs: 10 * MINUTE,
  },
};

/** Headers that travel with every message Puente publishes. */
export const Headers = {
  MsgId: 'Nats-Msg-Id',
  TraceParent: 'traceparent',
  TraceState: 'tracestate',
  EventType: 'Puente-Event-Type',
  /** On dead letters and redrives: where the message came from. */
  OriginalStream: 'Puente-Original-Stream',
  OriginalSubject: 'Puente-Original-Subject',
  OriginalSequence: 'Puente-Original-Sequence',
  Consumer: 'Puente-Consumer',
  Error: 'Puente-Error',
  ErrorCode: 'Puente-Error-Code',
  Deliveries: 'Puente-Deliveries',
  FailedAt: 'Puente-Failed-At',
} as const;

/** Subject of a dead letter: `dlq.<consumer>.<original subject>`. */
export function deadLetterSubject(consumer: string, originalSubject: string): string {
  return `dlq.${consumer}.${originalSubject}`;
}

/** Subject of a redrive that reaches only `consumer`: `redrive.<consumer>.<original subject>`. */
export function redriveSubject(consumer: string, originalSubject: string): string {
  return `redrive.${consumer}.${originalSubject}`;
}
