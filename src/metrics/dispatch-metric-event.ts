/**
 * The one dispatch of metric events to the sinks that keep something of their own (the
 * in-memory sink, the guardrails): a typed map from event type to handler, so that adding
 * an event type asks for a handler only where a sink keeps something of it.
 */
import { isMetricEventType, type MetricEvent, type MetricEventOf } from './events.js';

/** A handler per event type a sink keeps something of; `context` is the sink's own (its state, a clock reading). */
export type MetricEventHandlers<C = void> = {
  readonly [T in MetricEvent['type']]?: (event: MetricEventOf<T>, context: C) => void;
};

/**
 * Calls the handler of `event`'s type, if `handlers` has one. An event of a type
 * {@link MetricEvent} doesn't have (from untyped code) reaches none.
 */
export function dispatchMetricEvent<C>(handlers: MetricEventHandlers<C>, event: MetricEvent, context: C): void {
  const type: unknown = event.type;
  if (!isMetricEventType(type)) return;
  const handler = handlers[type] as ((event: MetricEvent, context: C) => void) | undefined;
  handler?.(event, context);
}
