/**
 * XenStore watches on the pure core: the initial event, matching at and below the watched path,
 * depth limits, relative paths, recursive removal, the special @introduceDomain/@releaseDomain
 * paths, permission filtering, duplicates, unwatch, resetWatches and domainReleased.
 */
import { describe, expect, it } from 'vitest';
import { code, enc, INITIAL_NODES, makeHome, newStore, readStr, recorder, val, watchNow } from './helpers.js';

describe('registration and the initial event', () => {
  it('the initial event comes from initialEvent, with the watch path and token', () => {
    const { store } = newStore();
    const w = recorder(store, 0, true);
    const r = w.session.watch('/some/path', 'tok');
    expect(r.ok).toBe(true);
    expect(w.events).toEqual([]);
    expect(store.stats.watches).toBe(1);
    w.session.initialEvent(val(r));
    expect(w.take()).toEqual([['/some/path', 'tok']]);
    // The path need not exist; registration creates nothing.
    expect(store.stats.nodes).toBe(INITIAL_NODES);
  });

  it('no initial event for a watch that was removed in between', () => {
    const { store } = newStore();
    const w = recorder(store, 0, true);
    const r = val(w.session.watch('/a', 't'));
    val(w.session.unwatch('/a', 't'));
    w.session.initialEvent(r);
    expect(w.events).toEqual([]);
  });

  it('a relative watch gets a relative initial event', () => {
    const { store, dom0 } = newStore();
    makeHome(dom0, 5);
    const g = recorder(store, 5, false);
    expect(watchNow(g.session, 'device/vdispl', 'rel')).toBe('OK');
    expect(g.take()).toEqual([['device/vdispl', 'rel']]);
  });

  it('duplicate path+token is EEXIST; same path other token or same token other path is fine', () => {
    const { store, dom0 } = newStore();
    makeHome(dom0, 5);
    const g = recorder(store, 5, false);
    expect(code(g.session.watch('/a', 't'))).toBe('OK');
    expect(code(g.session.watch('/a', 't'))).toBe('EEXIST');
    expect(code(g.session.watch('/a', 'u'))).toBe('OK');
    expect(code(g.session.watch('/b', 't'))).toBe('OK');
    // Relative and absolute spellings of one path are the same watch.
    expect(code(g.session.watch('x', 't'))).toBe('OK');
    expect(code(g.session.watch('/local/domain/5/x', 't'))).toBe('EEXIST');
    // Another connection may use the same path and token.
    expect(code(dom0.watch('/a', 't'))).toBe('OK');
    expect(store.stats.watches).toBe(5);
  });

  it('invalid watch paths and depths are EINVAL', () => {
    const { store } = newStore();
    const w = recorder(store, 0, true);
    for (const p of ['', '/a/', '//', '/a b', '@unknownSpecial', '@introduceDomain/x', '/a@b']) {
      expect(code(w.session.watch(p, 't')), p).toBe('EINVAL');
    }
    expect(code(w.session.watch('/a', 't', -1))).toBe('EINVAL');
    expect(code(w.session.watch('/a', 't', 1.5))).toBe('EINVAL');
    expect(store.stats.watches).toBe(0);
  });
});

describe('matching', () => {
  it('a watch fires for changes at its path and anywhere below, not beside', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '/a', 'A');
    w.take();
    val(dom0.write('/a', enc('1')));
    val(dom0.write('/a/b/c', enc('2'))); // creates /a/b too: one event, for the node written
    val(dom0.write('/ab', enc('3')));
    val(dom0.write('/b/a', enc('4')));
    val(dom0.write('/', enc('root')));
    expect(w.take()).toEqual([['/a', 'A'], ['/a/b/c', 'A']]);
    val(dom0.mkdir('/a/b')); // exists: no change, no event
    val(dom0.mkdir('/a/new'));
    val(dom0.setPerms('/a/b', [{ domid: 0, access: 'r' }]));
    val(dom0.rm('/a/missing')); // nothing removed, no event
    val(dom0.rm('/a/b/c'));
    expect(w.take()).toEqual([['/a/new', 'A'], ['/a/b', 'A'], ['/a/b/c', 'A']]);
  });

  it('a watch on / sees every node change but not the special paths', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '/', 'root');
    w.take();
    val(dom0.write('/x', enc('1')));
    store.domainIntroduced();
    store.domainReleased(42);
    val(dom0.rm('/x'));
    expect(w.take()).toEqual([['/x', 'root'], ['/x', 'root']]);
  });

  it('several watches of one connection each fire, in registration order', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '/a/b', 'inner');
    watchNow(w.session, '/a', 'outer');
    watchNow(w.session, '/a', 'outer2');
    w.take();
    val(dom0.write('/a/b/c', enc('1')));
    expect(w.take()).toEqual([['/a/b/c', 'inner'], ['/a/b/c', 'outer'], ['/a/b/c', 'outer2']]);
  });

  it('a session receives the events its own changes cause', () => {
    const { store } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '/own', 't');
    w.take();
    val(w.session.write('/own', enc('v')));
    expect(w.take()).toEqual([['/own', 't']]);
  });

  it('depth 0 matches only the path itself, depth 1 its children too', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '/a', 'd0', 0);
    watchNow(w.session, '/a', 'd1', 1);
    watchNow(w.session, '/', 'r1', 1);
    expect(w.take()).toEqual([['/a', 'd0'], ['/a', 'd1'], ['/', 'r1']]);
    val(dom0.write('/a', enc('1')));
    expect(w.take()).toEqual([['/a', 'd0'], ['/a', 'd1'], ['/a', 'r1']]);
    val(dom0.write('/a/b', enc('2')));
    expect(w.take()).toEqual([['/a/b', 'd1']]);
    val(dom0.write('/a/b/c', enc('3')));
    expect(w.take()).toEqual([]);
    val(dom0.write('/', enc('4')));
    expect(w.take()).toEqual([['/', 'r1']]);
  });

  it('a relative watch gets relative event paths', () => {
    const { store, dom0 } = newStore();
    const home = makeHome(dom0, 5);
    const g = recorder(store, 5, false);
    watchNow(g.session, 'device', 'rel');
    watchNow(g.session, `${home}/device`, 'abs');
    g.take();
    val(dom0.write(`${home}/device/vdispl/0/state`, enc('1')));
    expect(g.take()).toEqual([['device/vdispl/0/state', 'rel'], [`${home}/device/vdispl/0/state`, 'abs']]);
    val(g.session.write('device', enc('x')));
    expect(g.take()).toEqual([['device', 'rel'], [`${home}/device`, 'abs']]);
    // dom0's relative watches are relative to /local/domain/0.
    const d = recorder(store, 0, true);
    watchNow(d.session, 'name', 'n');
    val(dom0.write('/local/domain/0/name', enc('Domain-0')));
    expect(d.take()).toEqual([['name', 'n'], ['name', 'n']]);
  });

  it('removing a parent fires the watches below it with their own paths', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    val(dom0.write('/a/b/c', enc('1')));
    watchNow(w.session, '/a/b/c', 'deep');
    watchNow(w.session, '/a/b', 'mid');
    watchNow(w.session, '/a', 'top');
    watchNow(w.session, '/', 'root');
    watchNow(w.session, '/other', 'other');
    w.take();
    val(dom0.rm('/a'));
    expect(w.take()).toEqual([['/a/b/c', 'deep'], ['/a/b', 'mid'], ['/a', 'top'], ['/a', 'root']]);
    expect(store.stats.nodes).toBe(INITIAL_NODES);
  });

  it('removing a parent fires relative watches below it with their relative paths', () => {
    const { store, dom0 } = newStore();
    const home = makeHome(dom0, 5);
    const g = recorder(store, 5, false);
    val(g.session.write('dev/a/b', enc('1')));
    watchNow(g.session, 'dev/a/b', 'rel');
    g.take();
    val(g.session.rm('dev'));
    expect(g.take()).toEqual([['dev/a/b', 'rel']]);
    expect(val(dom0.directory(home))).toEqual([]);
  });
});

describe('special paths', () => {
  it('@introduceDomain and @releaseDomain events reach privileged sessions only', () => {
    const { store, dom0 } = newStore();
    const d = recorder(store, 0, true);
    makeHome(dom0, 5);
    const g = recorder(store, 5, false);
    expect(watchNow(d.session, '@introduceDomain', 'intro')).toBe('OK');
    expect(watchNow(d.session, '@releaseDomain', 'rel')).toBe('OK');
    // Unprivileged registration is accepted, and the initial event still comes.
    expect(watchNow(g.session, '@introduceDomain', 'gi')).toBe('OK');
    expect(watchNow(g.session, '@releaseDomain', 'gr')).toBe('OK');
    expect(d.take()).toEqual([['@introduceDomain', 'intro'], ['@releaseDomain', 'rel']]);
    expect(g.take()).toEqual([['@introduceDomain', 'gi'], ['@releaseDomain', 'gr']]);
    store.domainIntroduced();
    expect(d.take()).toEqual([['@introduceDomain', 'intro']]);
    store.domainReleased(9);
    expect(d.take()).toEqual([['@releaseDomain', 'rel']]);
    expect(g.events).toEqual([]);
  });

  it('getPerms/setPerms on special paths: dom0 only; widened perms let a guest see the events', () => {
    const { store } = newStore();
    const d = recorder(store, 0, true);
    const g = recorder(store, 5, false);
    expect(val(d.session.getPerms('@releaseDomain'))).toEqual([{ domid: 0, access: 'n' }]);
    expect(code(g.session.getPerms('@releaseDomain'))).toBe('EACCES');
    expect(code(g.session.setPerms('@releaseDomain', [{ domid: 5, access: 'b' }]))).toBe('EACCES');
    watchNow(g.session, '@releaseDomain', 'gr');
    watchNow(d.session, '@releaseDomain', 'dr');
    d.take();
    g.take();
    expect(code(d.session.setPerms('@releaseDomain', [{ domid: 0, access: 'n' }, { domid: 5, access: 'r' }]))).toBe('OK');
    expect(val(g.session.getPerms('@releaseDomain'))).toEqual([{ domid: 0, access: 'n' }, { domid: 5, access: 'r' }]);
    d.take();
    g.take();
    store.domainReleased(9);
    expect(g.take()).toEqual([['@releaseDomain', 'gr']]);
    expect(d.take()).toEqual([['@releaseDomain', 'dr']]);
    // @introduceDomain is unaffected.
    watchNow(g.session, '@introduceDomain', 'gi');
    g.take();
    store.domainIntroduced();
    expect(g.events).toEqual([]);
  });

  it('special paths are refused by ordinary operations', () => {
    const { store, dom0 } = newStore();
    for (const p of ['@introduceDomain', '@releaseDomain']) {
      expect(code(dom0.read(p))).toBe('EINVAL');
      expect(code(dom0.write(p, enc('x')))).toBe('EINVAL');
      expect(code(dom0.mkdir(p))).toBe('EINVAL');
      expect(code(dom0.rm(p))).toBe('EINVAL');
      expect(code(dom0.directory(p))).toBe('EINVAL');
    }
    expect(store.stats.nodes).toBe(INITIAL_NODES);
  });
});

describe('permission filtering', () => {
  it('an unprivileged watcher gets no events for nodes it cannot read', () => {
    const { store, dom0 } = newStore();
    const g = recorder(store, 5, false);
    watchNow(g.session, '/', 'all');
    g.take();
    val(dom0.write('/secret/x', enc('1'))); // inherits n0
    val(dom0.write('/pub', enc('1')));
    expect(g.take()).toEqual([]);
    // Readable after the change: the perms change itself is reported.
    val(dom0.setPerms('/pub', [{ domid: 0, access: 'r' }]));
    expect(g.take()).toEqual([['/pub', 'all']]);
    val(dom0.write('/pub', enc('2')));
    expect(g.take()).toEqual([['/pub', 'all']]);
    // Readable before the change: losing access is reported too, later changes are not.
    val(dom0.setPerms('/pub', [{ domid: 0, access: 'n' }]));
    expect(g.take()).toEqual([['/pub', 'all']]);
    val(dom0.write('/pub', enc('3')));
    expect(g.take()).toEqual([]);
    // An explicit entry for the watcher counts.
    val(dom0.setPerms('/secret/x', [{ domid: 0, access: 'n' }, { domid: 5, access: 'r' }]));
    val(dom0.write('/secret/x', enc('2')));
    expect(g.take()).toEqual([['/secret/x', 'all'], ['/secret/x', 'all']]);
    // Removal is filtered by the removed node's perms.
    val(dom0.rm('/secret'));
    expect(g.take()).toEqual([]);
    val(dom0.rm('/pub'));
    expect(g.take()).toEqual([]);
  });

  it('an owner always sees events for its own nodes; dom0 sees everything', () => {
    const { store, dom0 } = newStore();
    const home = makeHome(dom0, 5);
    const g = recorder(store, 5, false);
    const d = recorder(store, 0, true);
    watchNow(g.session, home, 'g');
    watchNow(d.session, home, 'd');
    g.take();
    d.take();
    val(dom0.write(`${home}/x`, enc('1')));
    val(dom0.write(`${home}/hidden`, enc('1')));
    val(dom0.setPerms(`${home}/hidden`, [{ domid: 0, access: 'n' }]));
    val(dom0.write(`${home}/hidden`, enc('2')));
    expect(g.take()).toEqual([[`${home}/x`, 'g'], [`${home}/hidden`, 'g'], [`${home}/hidden`, 'g']]);
    expect(d.take()).toEqual([[`${home}/x`, 'd'], [`${home}/hidden`, 'd'], [`${home}/hidden`, 'd'], [`${home}/hidden`, 'd']]);
  });
});

describe('unwatch and resetWatches', () => {
  it('unwatch removes exactly one watch; unknown ones are ENOENT', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '/a', 't1');
    watchNow(w.session, '/a', 't2');
    w.take();
    expect(code(w.session.unwatch('/a', 't3'))).toBe('ENOENT');
    expect(code(w.session.unwatch('/b', 't1'))).toBe('ENOENT');
    expect(code(w.session.unwatch('/a/', 't1'))).toBe('EINVAL');
    expect(code(w.session.unwatch('/a', 't1'))).toBe('OK');
    expect(code(w.session.unwatch('/a', 't1'))).toBe('ENOENT');
    expect(store.stats.watches).toBe(1);
    val(dom0.write('/a', enc('1')));
    expect(w.take()).toEqual([['/a', 't2']]);
  });

  it('unwatch of a relative watch works with the relative or the absolute path', () => {
    const { store, dom0 } = newStore();
    makeHome(dom0, 5);
    const g = recorder(store, 5, false);
    watchNow(g.session, 'x', 't');
    watchNow(g.session, 'y', 't');
    expect(code(g.session.unwatch('/local/domain/5/x', 't'))).toBe('OK');
    expect(code(g.session.unwatch('y', 't'))).toBe('OK');
    expect(store.stats.watches).toBe(0);
  });

  it('unwatch of a special path', () => {
    const { store } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '@releaseDomain', 't');
    expect(code(w.session.unwatch('@releaseDomain', 't'))).toBe('OK');
    w.take();
    store.domainReleased(3);
    expect(w.events).toEqual([]);
  });

  it('resetWatches drops every watch of the session and nothing fires afterwards', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    const other = recorder(store, 0, true);
    for (const p of ['/a', '/b', '@releaseDomain']) watchNow(w.session, p, 't');
    watchNow(other.session, '/a', 'o');
    expect(store.stats.watches).toBe(4);
    w.session.resetWatches();
    expect(store.stats.watches).toBe(1);
    w.take();
    other.take();
    val(dom0.write('/a', enc('1')));
    store.domainReleased(3);
    expect(w.events).toEqual([]);
    expect(other.take()).toEqual([['/a', 'o']]);
    // Watches can be registered again.
    expect(watchNow(w.session, '/a', 't')).toBe('OK');
    expect(w.take()).toEqual([['/a', 't']]);
  });

  it('a closed session gets no more events', () => {
    const { store, dom0 } = newStore();
    const w = recorder(store, 0, true);
    watchNow(w.session, '/', 't');
    w.take();
    w.session.close();
    val(dom0.write('/a', enc('1')));
    expect(w.events).toEqual([]);
    expect(store.stats.watches).toBe(0);
  });
});

describe('domainReleased', () => {
  it('removes the nodes the domain owns (with what lies below), its sessions and watches, then fires @releaseDomain', () => {
    const { store, dom0 } = newStore();
    const home5 = makeHome(dom0, 5);
    const home7 = makeHome(dom0, 7);
    const g5 = recorder(store, 5, false);
    const g5b = recorder(store, 5, false);
    const g7 = recorder(store, 7, false);
    const d = recorder(store, 0, true);
    val(g5.session.write('a', enc('1')));
    val(g5.session.write('b/c', enc('2')));
    // Owned by dom0 but below the guest's home: goes with it.
    val(dom0.write(`${home5}/dom0owned`, enc('x')));
    val(dom0.setPerms(`${home5}/dom0owned`, [{ domid: 0, access: 'n' }]));
    // Owned by 5 elsewhere.
    val(dom0.write('/vm/5/name', enc('guest')));
    val(dom0.setPerms('/vm/5', [{ domid: 5, access: 'n' }]));
    // Owned by 5 below a dom0 node that stays.
    val(dom0.write('/backend/vdispl/5/0', enc('be')));
    val(dom0.setPerms('/backend/vdispl/5/0', [{ domid: 5, access: 'r' }]));
    val(g7.session.write('keep', enc('7')));
    watchNow(g5.session, '/', 'g5');
    watchNow(g5b.session, 'a', 'g5b');
    watchNow(g7.session, 'keep', 'g7');
    watchNow(d.session, '@releaseDomain', 'rel');
    watchNow(d.session, home5, 'home5');
    watchNow(d.session, '/vm', 'vm');
    for (const r of [g5, g5b, g7, d]) r.take();
    expect(store.stats).toEqual({ nodes: 19, sessions: 5, watches: 6, transactions: 0 });
    // home5, a, b, b/c, /vm/5 and /backend/vdispl/5/0 (/vm/5/name and dom0owned are dom0's).
    expect(store.tree.ownedBy(5)).toBe(6);
    expect(store.tree.ownedBy(7)).toBe(2);

    store.domainReleased(5);

    expect(g5.session.isClosed).toBe(true);
    expect(g5b.session.isClosed).toBe(true);
    expect(g7.session.isClosed).toBe(false);
    // Gone: the 5 nodes of home5's subtree, /vm/5 and /vm/5/name, /backend/vdispl/5/0.
    expect(store.stats).toEqual({ nodes: 11, sessions: 3, watches: 4, transactions: 0 });
    expect(store.tree.ownedBy(5)).toBe(0);
    expect(store.tree.ownedBy(7)).toBe(2);
    expect(code(dom0.read(home5))).toBe('ENOENT');
    expect(code(dom0.read('/vm/5'))).toBe('ENOENT');
    expect(val(dom0.directory('/vm'))).toEqual([]);
    expect(val(dom0.directory('/backend/vdispl/5'))).toEqual([]);
    expect(val(dom0.directory('/local/domain'))).toEqual(['7']);
    expect(readStr(dom0, `${home7}/keep`)).toBe('7');
    expect(g5.events).toEqual([]);
    expect(g7.events).toEqual([]);
    // Subtrees go shortest path first; @releaseDomain comes last.
    expect(d.take()).toEqual([['/vm/5', 'vm'], [home5, 'home5'], ['@releaseDomain', 'rel']]);
    // The closed session can do nothing more.
    expect(code(g5.session.read('a'))).toBe('ENOENT');
    expect(code(g5.session.watch('a', 'again'))).toBe('EINVAL');
  });

  it('with no nodes and no sessions it just fires @releaseDomain', () => {
    const { store } = newStore();
    const d = recorder(store, 0, true);
    watchNow(d.session, '@releaseDomain', 'rel');
    d.take();
    store.domainReleased(12);
    expect(d.take()).toEqual([['@releaseDomain', 'rel']]);
    expect(store.stats).toEqual({ nodes: INITIAL_NODES, sessions: 2, watches: 1, transactions: 0 });
  });
});
