/**
 * The router's write promise at the database, on statements whose plain reading hides a
 * trap: no acknowledged write missing or different on either side while both are
 * written, and a statement the router can't rewrite safely refused before anything runs.
 * Each test checks the stored rows of both sides after the statement.
 */
import { expect, it } from 'vitest';
import { describeDrivers } from '../support/drivers.js';
import { filePglite, routedUsers } from './fixture.js';

const pglite = filePglite();

const rows = <Row>(admin: (sql: string) => Promise<Row[]>) => admin('SELECT * FROM users ORDER BY id');

describeDrivers('routed SQL: write safety', (getCtx) => {
  it('dualwrite: a CTE named like the table does not hide the target of a write', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'dualwrite' });
    await db.query("WITH users AS (SELECT 1) INSERT INTO users (id, username) VALUES (1, 'alice')");
    await db.query("WITH users AS (SELECT 1) UPDATE users SET username = 'bob' WHERE id = 1");
    await db.query("WITH users AS (SELECT 1) INSERT INTO users (id, username) VALUES (2, 'carol')");
    expect(await rows(admin)).toEqual([
      { id: 1, user_name: 'bob', username: 'bob', email: null },
      { id: 2, user_name: 'carol', username: 'carol', email: null },
    ]);
  });
});
