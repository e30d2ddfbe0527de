/**
 * Attribute values from metric events, bounded by core's shared rules
 * (src/metric-labels.ts): what doesn't fit its attribute's known set becomes `other`.
 * Named here after the attributes they fill (`error.type`, `feature_flag.key`); the
 * attribute keys themselves are chosen in opentelemetry-metrics.ts.
 */
export {
  errorCodeLabel as errorTypeValue,
  flagKeyLabel as flagKeyValue,
  migrationLabel as migrationValue,
  OTHER,
  oneOf,
  operationLabel as operationValue,
  sideLabel as sideValue,
  sidesLabel as sidesValue,
  stageLabel as stageValue,
} from '../../src/metric-labels.js';
