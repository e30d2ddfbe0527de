/**
 * One process of the propagation benchmark (bench/propagation.ts): an application that
 * resolves a migration's stage flag through the PostgreSQL flag provider and flagshift's
 * OpenFeature source, every few milliseconds, as request handlers would. Prints `ready` once
 * the provider serves, then `seen <value> <epoch ms>` at the first read that returns a
 * value other than the previous read's, with the wall clock of that read (the same clock
 * the server stamps commits with). Provider events are printed as `event <name> <epoch ms>`.
 * Ends, closing OpenFeature and then its pool, when stdin closes.
 *
 * Usage: node --import tsx --conditions=flagshift-source bench/propagation-reader.ts <connectionString> <stageFlagKey>
 */
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { createOpenFeatureFlags } from 'flagshift/openfeature';
import { createPostgresFlagProvider } from 'flagshift/postgres-flags';
import pg from 'pg';

const [connectionString = '', flagKey = ''] = process.argv.slice(2);
if (connectionString === '' || flagKey === '') {
  process.stderr.write('usage: propagation-reader.ts <connectionString> <stageFlagKey>\n');
  process.exit(2);
}

/**
 * Time between two reads. Every 5 ms rather than every 1: 32 processes waking a thousand
 * times a second would take a core of their own and measure the benchmark's load; 5 ms
 * adds at most 5 ms to a measured delay.
 */
const READ_EVERY_MS = 5;

/** Wall-clock milliseconds with sub-millisecond resolution. */
const now = () => performance.timeOrigin + performance.now();

// The application's pool, which the provider is given as the README shows.
const pool = new pg.Pool({ connectionString, max: 4, application_name: 'flagshift-propagation-reader' });
pool.on('error', () => undefined);
const provider = createPostgresFlagProvider({ pool });
for (const event of [ProviderEvents.Stale, ProviderEvents.Ready, ProviderEvents.Error] as const) {
  provider.events.addHandler(event, () => process.stdout.write(`event ${event} ${now()}\n`));
}
await OpenFeature.setProviderAndWait('propagation', provider);
const flags = createOpenFeatureFlags({ domain: 'propagation' });

let last: unknown;
let stopped = false;
async function read(): Promise<void> {
  if (stopped) return;
  let value: unknown;
  try {
    value = await flags.resolve(flagKey, 'string', {});
  } catch (error) {
    value = `error:${(error as Error).message}`;
  }
  const at = now();
  if (value !== last) {
    last = value;
    process.stdout.write(`seen ${String(value)} ${at}\n`);
  }
  setTimeout(() => void read(), READ_EVERY_MS);
}
await read();
process.stdout.write(`ready ${process.pid}\n`);

process.stdin.resume();
process.stdin.on('end', () => {
  stopped = true;
  void OpenFeature.close()
    .then(() => pool.end())
    .finally(() => process.exit(0));
});
