/**
 * The soak of scripts/soak.ts in its short form: 8 clients for 8 seconds while the flags
 * ramp up and down, the flag provider fails and connections are killed. `npm run soak`
 * runs the same function for 60 seconds (SOAK_SECONDS).
 */
import { expect, inject, it } from 'vitest';
import { formatSoakReport, runSoak } from '../../scripts/soak.js';

const SECONDS = Number(process.env['FLAGSHIFT_SOAK_SECONDS'] ?? 8);

it(
  `soak (${SECONDS}s, 8 clients): zero lost writes and zero divergence while flags ramp, fail and connections die`,
  async () => {
    const report = await runSoak({
      connectionString: inject('postgres').connectionString,
      seconds: SECONDS,
      clients: 8,
    });
    expect(report.violations, formatSoakReport(report)).toEqual([]);
    expect(report.lostWrites, 'invariant: zero lost writes').toBe(0);
    expect(report.divergentRows, 'invariant: zero divergence').toBe(0);
    // The run proves something only if it really exercised what it claims to.
    expect(report.acknowledgedWrites, 'writes were acknowledged').toBeGreaterThan(200);
    expect(report.checkedReads, 'reads were checked').toBeGreaterThan(100);
    expect(report.stageChanges, 'the flags ramped').toBeGreaterThanOrEqual(8);
    expect(report.flagOutages, 'the flag provider failed').toBeGreaterThan(3);
    expect(report.metrics.flagFallbacks.total, 'fallbacks were counted').toBeGreaterThan(0);
    expect(report.metrics.reads.bySide.new, 'reads were served from the new side').toBeGreaterThan(0);
    expect(report.metrics.comparisons, 'shadow reads compared').toBeGreaterThan(0);
  },
  SECONDS * 1000 + 60_000,
);
