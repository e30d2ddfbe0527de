/**
 * Part 4 in a process of its own, started by {@link runBackfillsApart}: the backfill's side
 * of the benchmark (flagshift's backfill, the keyset loop, the single statement) runs in a
 * process that has run nothing else, as the CLI does.
 */
import { type BackfillBenchOptions, type BackfillProcessAnswer, runBackfills } from './backfill.js';

const options = JSON.parse(process.argv[2] ?? '{}') as Omit<BackfillBenchOptions, 'log'>;
const answer = (message: BackfillProcessAnswer) => process.send!(message, () => process.disconnect());
runBackfills({ ...options, log: (line) => console.log(line) }).then(
  (results) => answer({ results }),
  (error: unknown) => answer({ error: String((error as Error)?.stack ?? error) }),
);
