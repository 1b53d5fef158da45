/**
 * The pure XenStore core, tested directly with node counting, the way QEMU tests its xenstore
 * core (tests/unit/test-xs-node.c checks the node count after every operation): after each
 * operation `store.stats.nodes` and `store.tree.ownedBy(domid)` are asserted.
 *
 * Covered: tree operations (write/mkdir/rm/directory), path validation and resolution, the
 * permission model (owner, default letter, explicit entries, dom0, inheritance, ENOENT vs
 * EACCES from the nearest existing ancestor) and the per-domain quotas.
 */
import { describe, expect, it } from 'vitest';
import { XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } from '../../../src/abi/xs-wire.js';
import {
  depthOf, isAtOrBelow, parentPath, relativeTo, resolvePath,
} from '../../../src/xenstore/path.js';
import { accessFor, parsePerm, parsePerms } from '../../../src/xenstore/perms.js';
import type { XsPerms } from '../../../src/xenstore/perms.js';
import { code, dec, enc, INITIAL_NODES, makeHome, newStore, readStr, val } from './helpers.js';

describe('path helpers', () => {
  it('resolvePath makes relative paths absolute under /local/domain/<domid>', () => {
    expect(resolvePath('device/vdispl/0', 5)).toEqual({ abs: '/local/domain/5/device/vdispl/0', relative: true });
    expect(resolvePath('/local/domain/5/x', 5)).toEqual({ abs: '/local/domain/5/x', relative: false });
    expect(resolvePath('/', 5)).toEqual({ abs: '/', relative: false });
    expect(resolvePath('x', 0)).toEqual({ abs: '/local/domain/0/x', relative: true });
  });

  it('resolvePath rejects bad paths', () => {
    for (const p of ['', '//', '/a//b', '/a/', 'a/', '/a b', '/a.b', '/a\0', '/é', '/a@b', '@introduceDomain', '@foo']) {
      expect(resolvePath(p, 5), JSON.stringify(p)).toBeUndefined();
    }
    expect(resolvePath('@introduceDomain', 5, { allowSpecial: true })).toEqual({ abs: '@introduceDomain', relative: false });
    expect(resolvePath('@releaseDomain', 5, { allowSpecial: true })).toEqual({ abs: '@releaseDomain', relative: false });
    expect(resolvePath('@foo', 5, { allowSpecial: true })).toBeUndefined();
  });

  it('resolvePath: absolute length limit 3072, relative limit counted below /local/domain/<n>/', () => {
    const abs = `/${'a'.repeat(XENSTORE_ABS_PATH_MAX - 1)}`;
    expect(resolvePath(abs, 0, { maxRelative: Infinity })?.abs).toBe(abs);
    expect(resolvePath(`${abs}b`, 0, { maxRelative: Infinity })).toBeUndefined();
    expect(resolvePath('a'.repeat(XENSTORE_REL_PATH_MAX), 5)?.abs).toBe(`/local/domain/5/${'a'.repeat(2048)}`);
    expect(resolvePath('a'.repeat(XENSTORE_REL_PATH_MAX + 1), 5)).toBeUndefined();
    // Outside /local/domain/<n>/ the whole path counts.
    expect(resolvePath(`/${'a'.repeat(2047)}`, 5)?.abs).toHaveLength(2048);
    expect(resolvePath(`/${'a'.repeat(2048)}`, 5)).toBeUndefined();
    expect(resolvePath('abc', 5, { maxRelative: 3 })?.abs).toBe('/local/domain/5/abc');
    expect(resolvePath('abcd', 5, { maxRelative: 3 })).toBeUndefined();
  });

  it('parentPath, isAtOrBelow, depthOf, relativeTo', () => {
    expect(parentPath('/')).toBe('/');
    expect(parentPath('/a')).toBe('/');
    expect(parentPath('/a/b/c')).toBe('/a/b');
    expect(isAtOrBelow('/a', '/a')).toBe(true);
    expect(isAtOrBelow('/a/b', '/a')).toBe(true);
    expect(isAtOrBelow('/ab', '/a')).toBe(false);
    expect(isAtOrBelow('/a', '/a/b')).toBe(false);
    expect(isAtOrBelow('/anything', '/')).toBe(true);
    expect(isAtOrBelow('/', '/')).toBe(true);
    expect(depthOf('/')).toBe(0);
    expect(depthOf('/a')).toBe(1);
    expect(depthOf('/a/b/c')).toBe(3);
    expect(relativeTo('/local/domain/5/x/y', 5)).toBe('x/y');
    expect(relativeTo('/local/domain/6/x', 5)).toBe('/local/domain/6/x');
    expect(relativeTo('/local/domain/5', 5)).toBe('/local/domain/5');
  });
});

describe('permission helpers', () => {
  it('parsePerm / parsePerms', () => {
    expect(parsePerm('n0')).toEqual({ access: 'n', domid: 0 });
    expect(parsePerm('b32751')).toEqual({ access: 'b', domid: 32751 });
    for (const bad of ['', 'x1', 'r', 'r-1', 'r1a', 'R1', 'r32752', 'r123456', ' r1']) {
      expect(parsePerm(bad), bad).toBeUndefined();
    }
    expect(parsePerms([])).toBeUndefined();
    expect(parsePerms(['r1', 'q2'])).toBeUndefined();
    expect(parsePerms(['w3', 'r1'])).toEqual([{ access: 'w', domid: 3 }, { access: 'r', domid: 1 }]);
  });

  it('accessFor: owner, dom0, explicit entries, default letter', () => {
    const perms: XsPerms = [{ domid: 5, access: 'r' }, { domid: 7, access: 'n' }, { domid: 8, access: 'w' }, { domid: 9, access: 'b' }, { domid: 7, access: 'b' }];
    expect(accessFor(perms, { domid: 5, privileged: false })).toEqual({ read: true, write: true, owner: true });
    expect(accessFor(perms, { domid: 0, privileged: true })).toEqual({ read: true, write: true, owner: true });
    expect(accessFor(perms, { domid: 7, privileged: false })).toEqual({ read: false, write: false, owner: false });
    expect(accessFor(perms, { domid: 8, privileged: false })).toEqual({ read: false, write: true, owner: false });
    expect(accessFor(perms, { domid: 9, privileged: false })).toEqual({ read: true, write: true, owner: false });
    expect(accessFor(perms, { domid: 10, privileged: false })).toEqual({ read: true, write: false, owner: false });
  });
});

describe('tree operations with node counting', () => {
  it('starts with /, /tool and /tool/xenstored owned by dom0', () => {
    const { store, dom0 } = newStore();
    expect(store.stats).toEqual({ nodes: INITIAL_NODES, sessions: 1, watches: 0, transactions: 0 });
    expect(store.tree.ownedBy(0)).toBe(3);
    expect(val(dom0.directory('/'))).toEqual(['tool']);
    expect(val(dom0.directory('/tool'))).toEqual(['xenstored']);
    expect(val(dom0.directory('/tool/xenstored'))).toEqual([]);
    expect(val(dom0.getPerms('/'))).toEqual([{ domid: 0, access: 'n' }]);
    expect(readStr(dom0, '/')).toBe('');
  });

  it('write creates the missing parents with empty values, then overwrites in place', () => {
    const { store, dom0 } = newStore();
    expect(code(dom0.write('/a/b/c', enc('v')))).toBe('OK');
    expect(store.stats.nodes).toBe(6);
    expect(store.tree.ownedBy(0)).toBe(6);
    expect(readStr(dom0, '/a')).toBe('');
    expect(readStr(dom0, '/a/b')).toBe('');
    expect(readStr(dom0, '/a/b/c')).toBe('v');
    expect(val(dom0.directory('/'))).toEqual(['tool', 'a']);
    expect(val(dom0.directory('/a'))).toEqual(['b']);
    expect(val(dom0.directory('/a/b/c'))).toEqual([]);
    expect(val(dom0.getPerms('/a/b/c'))).toEqual([{ domid: 0, access: 'n' }]);

    expect(code(dom0.write('/a/b/c', enc('second')))).toBe('OK');
    expect(store.stats.nodes).toBe(6);
    expect(readStr(dom0, '/a/b/c')).toBe('second');

    expect(code(dom0.write('/a/b/c', new Uint8Array(0)))).toBe('OK');
    expect(store.stats.nodes).toBe(6);
    expect(readStr(dom0, '/a/b/c')).toBe('');

    // Writing a value on an inner node keeps its children.
    expect(code(dom0.write('/a', enc('inner')))).toBe('OK');
    expect(store.stats.nodes).toBe(6);
    expect(readStr(dom0, '/a')).toBe('inner');
    expect(val(dom0.directory('/a'))).toEqual(['b']);
  });

  it('write keeps binary values byte-exact (NUL and high bytes)', () => {
    const { store, dom0 } = newStore();
    const bytes = new Uint8Array([0, 1, 2, 0xff, 0, 0x80]);
    expect(code(dom0.write('/bin', bytes))).toBe('OK');
    expect(store.stats.nodes).toBe(4);
    expect([...val(dom0.read('/bin'))]).toEqual([...bytes]);
  });

  it('mkdir creates the path and parents, and keeps existing values', () => {
    const { store, dom0 } = newStore();
    expect(code(dom0.mkdir('/m/n'))).toBe('OK');
    expect(store.stats.nodes).toBe(5);
    expect(readStr(dom0, '/m/n')).toBe('');
    expect(code(dom0.write('/m', enc('keep')))).toBe('OK');
    expect(code(dom0.mkdir('/m'))).toBe('OK');
    expect(store.stats.nodes).toBe(5);
    expect(readStr(dom0, '/m')).toBe('keep');
    expect(code(dom0.mkdir('/m/n'))).toBe('OK');
    expect(store.stats.nodes).toBe(5);
    expect(code(dom0.mkdir('/m/n/o/p'))).toBe('OK');
    expect(store.stats.nodes).toBe(7);
    expect(readStr(dom0, '/m')).toBe('keep');
    expect(val(dom0.directory('/m/n/o'))).toEqual(['p']);
    expect(store.tree.ownedBy(0)).toBe(7);
  });

  it('rm removes a whole subtree and unlinks it from its parent', () => {
    const { store, dom0 } = newStore();
    val(dom0.write('/a/b/c', enc('1')));
    val(dom0.write('/a/b/d', enc('2')));
    val(dom0.write('/a/e', enc('3')));
    val(dom0.write('/z', enc('4')));
    expect(store.stats.nodes).toBe(9);
    expect(code(dom0.rm('/a/b'))).toBe('OK');
    expect(store.stats.nodes).toBe(6);
    expect(val(dom0.directory('/a'))).toEqual(['e']);
    expect(readStr(dom0, '/a/b/c')).toBe('!ENOENT');
    expect(readStr(dom0, '/a/b')).toBe('!ENOENT');
    expect(code(dom0.rm('/a'))).toBe('OK');
    expect(store.stats.nodes).toBe(4);
    expect(val(dom0.directory('/'))).toEqual(['tool', 'z']);
    expect(store.tree.ownedBy(0)).toBe(4);
    // Recreating gives fresh, empty nodes.
    val(dom0.mkdir('/a/b'));
    expect(store.stats.nodes).toBe(6);
    expect(val(dom0.directory('/a/b'))).toEqual([]);
    expect(readStr(dom0, '/a')).toBe('');
  });

  it('rm of a missing node: fine if the parent exists, ENOENT if the parent is missing', () => {
    const { store, dom0 } = newStore();
    val(dom0.mkdir('/p'));
    expect(store.stats.nodes).toBe(4);
    expect(code(dom0.rm('/p/missing'))).toBe('OK');
    expect(store.stats.nodes).toBe(4);
    expect(code(dom0.rm('/p/missing/deeper'))).toBe('ENOENT');
    expect(code(dom0.rm('/nope/x'))).toBe('ENOENT');
    expect(code(dom0.rm('/nope'))).toBe('OK');
    expect(store.stats.nodes).toBe(4);
  });

  it('rm / is EINVAL and removes nothing', () => {
    const { store, dom0 } = newStore();
    val(dom0.write('/a', enc('x')));
    expect(code(dom0.rm('/'))).toBe('EINVAL');
    expect(store.stats.nodes).toBe(4);
    expect(val(dom0.directory('/'))).toEqual(['tool', 'a']);
  });

  it('directory lists children in creation order; a re-created child goes last', () => {
    const { store, dom0 } = newStore();
    for (const n of ['zeta', 'alpha', 'mu', '10', '9']) val(dom0.write(`/d/${n}`, enc(n)));
    expect(store.stats.nodes).toBe(9);
    expect(val(dom0.directory('/d'))).toEqual(['zeta', 'alpha', 'mu', '10', '9']);
    val(dom0.rm('/d/alpha'));
    expect(store.stats.nodes).toBe(8);
    val(dom0.write('/d/alpha', enc('again')));
    val(dom0.write('/d/zeta', enc('rewritten')));
    expect(store.stats.nodes).toBe(9);
    expect(val(dom0.directory('/d'))).toEqual(['zeta', 'mu', '10', '9', 'alpha']);
  });

  it('reading, listing and perms of missing nodes are ENOENT for dom0', () => {
    const { store, dom0 } = newStore();
    expect(code(dom0.read('/missing'))).toBe('ENOENT');
    expect(code(dom0.directory('/missing'))).toBe('ENOENT');
    expect(code(dom0.getPerms('/missing'))).toBe('ENOENT');
    expect(code(dom0.setPerms('/missing', [{ domid: 0, access: 'n' }]))).toBe('ENOENT');
    expect(store.stats.nodes).toBe(INITIAL_NODES);
  });
});

describe('paths', () => {
  it('relative paths resolve against /local/domain/<domid>', () => {
    const { store, dom0 } = newStore();
    const home = makeHome(dom0, 5);
    expect(store.stats.nodes).toBe(6);
    const g = store.connect({ domid: 5 });
    expect(code(g.write('device/vdispl/0/state', enc('1')))).toBe('OK');
    expect(store.stats.nodes).toBe(10);
    expect(store.tree.ownedBy(5)).toBe(5);
    expect(readStr(dom0, `${home}/device/vdispl/0/state`)).toBe('1');
    expect(readStr(g, 'device/vdispl/0/state')).toBe('1');
    expect(readStr(g, `${home}/device/vdispl/0/state`)).toBe('1');
    expect(val(g.directory('device'))).toEqual(['vdispl']);
    expect(code(g.mkdir('data'))).toBe('OK');
    expect(code(g.rm('device'))).toBe('OK');
    expect(store.stats.nodes).toBe(7);
    expect(store.tree.ownedBy(5)).toBe(2);
    expect(val(dom0.directory(home))).toEqual(['data']);
    // dom0's relative paths go under /local/domain/0.
    expect(code(dom0.write('name', enc('Domain-0')))).toBe('OK');
    expect(readStr(dom0, '/local/domain/0/name')).toBe('Domain-0');
    expect(store.stats.nodes).toBe(9);
  });

  const bad = ['', '//', '/a//b', '/a/', 'a/', 'a//b', '/a b', '/a.b', '/a$', '/a\n', '/ü', '/a@b', '@introduceDomain', '@releaseDomain', '@other'];

  it.each(bad)('invalid path %j is EINVAL for every operation and changes nothing', (p) => {
    const { store, dom0 } = newStore();
    expect(code(dom0.read(p))).toBe('EINVAL');
    expect(code(dom0.write(p, enc('x')))).toBe('EINVAL');
    expect(code(dom0.mkdir(p))).toBe('EINVAL');
    expect(code(dom0.rm(p))).toBe('EINVAL');
    expect(code(dom0.directory(p))).toBe('EINVAL');
    expect(code(dom0.directoryGen(p))).toBe('EINVAL');
    if (!p.startsWith('@')) {
      expect(code(dom0.getPerms(p))).toBe('EINVAL');
      expect(code(dom0.setPerms(p, [{ domid: 0, access: 'r' }]))).toBe('EINVAL');
    }
    expect(store.stats.nodes).toBe(INITIAL_NODES);
  });

  it('the root path is valid ("/" is the only path that may end in a slash)', () => {
    const { store, dom0 } = newStore();
    expect(readStr(dom0, '/')).toBe('');
    expect(code(dom0.mkdir('/'))).toBe('OK');
    expect(code(dom0.write('/', enc('root')))).toBe('OK');
    expect(readStr(dom0, '/')).toBe('root');
    expect(store.stats.nodes).toBe(INITIAL_NODES);
  });

  it('absolute path length: 3072 characters accepted, 3073 refused (privileged)', () => {
    const { store, dom0 } = newStore();
    const max = `/${'a'.repeat(XENSTORE_ABS_PATH_MAX - 1)}`;
    expect(max).toHaveLength(3072);
    expect(code(dom0.write(max, enc('x')))).toBe('OK');
    expect(store.stats.nodes).toBe(4);
    expect(readStr(dom0, max)).toBe('x');
    expect(code(dom0.write(`${max}b`, enc('x')))).toBe('EINVAL');
    expect(code(dom0.mkdir(`/${'b'.repeat(3072)}`))).toBe('EINVAL');
    expect(store.stats.nodes).toBe(4);
  });

  it('unprivileged relative path length: 2048 accepted, 2049 refused', () => {
    const { store, dom0 } = newStore();
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    const rel = 'r'.repeat(XENSTORE_REL_PATH_MAX);
    expect(code(g.write(rel, enc('x')))).toBe('OK');
    expect(store.stats.nodes).toBe(7);
    expect(readStr(g, rel)).toBe('x');
    expect(code(g.write(`${rel}s`, enc('x')))).toBe('EINVAL');
    expect(code(g.read(`${rel}s`))).toBe('EINVAL');
    expect(code(g.write(`/local/domain/5/${rel}s`, enc('x')))).toBe('EINVAL');
    // Deeper paths count every character below /local/domain/5/.
    expect(code(g.mkdir(`${'d'.repeat(1000)}/${'e'.repeat(1047)}`))).toBe('OK');
    expect(code(g.mkdir(`${'d'.repeat(1000)}/${'e'.repeat(1048)}`))).toBe('EINVAL');
    expect(store.stats.nodes).toBe(9);
    // Outside /local/domain/<n>/ the whole path counts: 2048 passes the length check (then EACCES at /).
    expect(code(g.write(`/${'a'.repeat(2047)}`, enc('x')))).toBe('EACCES');
    expect(code(g.write(`/${'a'.repeat(2048)}`, enc('x')))).toBe('EINVAL');
    expect(store.stats.nodes).toBe(9);
  });

  it('the relative path quota is configurable and binds unprivileged callers only', () => {
    const { store, dom0 } = newStore({ pathLength: 10 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    expect(code(g.write('a'.repeat(10), enc('x')))).toBe('OK');
    expect(code(g.write('a'.repeat(11), enc('x')))).toBe('EINVAL');
    expect(code(dom0.write(`/local/domain/5/${'b'.repeat(11)}`, enc('x')))).toBe('OK');
    expect(code(dom0.write('c'.repeat(100), enc('x')))).toBe('OK'); // + /local/domain/0
    expect(store.stats.nodes).toBe(10);
  });

  it('privileged callers are not limited by the relative path quota', () => {
    const { store, dom0 } = newStore();
    makeHome(dom0, 5);
    const long = `/local/domain/5/${'a'.repeat(2100)}`;
    expect(code(dom0.write(long, enc('x')))).toBe('OK');
    expect(readStr(dom0, long)).toBe('x');
    expect(code(dom0.write('b'.repeat(2100), enc('y')))).toBe('OK'); // + /local/domain/0
    expect(store.stats.nodes).toBe(9);
    // The guest cannot even name it.
    const g = store.connect({ domid: 5 });
    expect(code(g.read(long))).toBe('EINVAL');
  });
});

describe('permissions', () => {
  function setup() {
    const { store, dom0 } = newStore();
    const home5 = makeHome(dom0, 5);
    makeHome(dom0, 7);
    const g5 = store.connect({ domid: 5 });
    const g7 = store.connect({ domid: 7 });
    return { store, dom0, home5, g5, g7 };
  }

  it('the owner has full access whatever its letter says', () => {
    const { store, dom0, home5, g5 } = setup();
    expect(store.stats.nodes).toBe(7);
    val(dom0.write(`${home5}/own`, enc('v')));
    val(dom0.setPerms(`${home5}/own`, [{ domid: 5, access: 'n' }]));
    expect(readStr(g5, 'own')).toBe('v');
    expect(code(g5.write('own', enc('w')))).toBe('OK');
    expect(val(g5.directory('own'))).toEqual([]);
    expect(val(g5.getPerms('own'))).toEqual([{ domid: 5, access: 'n' }]);
    expect(code(g5.setPerms('own', [{ domid: 5, access: 'r' }, { domid: 7, access: 'r' }]))).toBe('OK');
    expect(code(g5.rm('own'))).toBe('OK');
    expect(store.stats.nodes).toBe(7);
    expect(store.tree.ownedBy(5)).toBe(1);
  });

  it.each([
    ['n', '!EACCES', 'EACCES'],
    ['r', 'v', 'EACCES'],
    ['w', '!EACCES', 'OK'],
    ['b', 'v', 'OK'],
  ] as const)('entry 0 letter %s is the default for other domains', (letter, read, write) => {
    const { store, dom0, g7 } = setup();
    val(dom0.write('/shared', enc('v')));
    val(dom0.setPerms('/shared', [{ domid: 0, access: letter }]));
    expect(readStr(g7, '/shared')).toBe(read);
    expect(code(g7.write('/shared', enc('x')))).toBe(write);
    expect(code(g7.directory('/shared'))).toBe(read === 'v' ? 'OK' : 'EACCES');
    expect(code(g7.getPerms('/shared'))).toBe(read === 'v' ? 'OK' : 'EACCES');
    expect(code(g7.rm('/shared'))).toBe(write);
    expect(store.stats.nodes).toBe(write === 'OK' ? 7 : 8);
  });

  it('explicit entries override the default; the first matching entry wins', () => {
    const { store, dom0 } = setup();
    val(dom0.write('/x', enc('v')));
    val(dom0.setPerms('/x', [
      { domid: 0, access: 'n' }, { domid: 7, access: 'r' }, { domid: 8, access: 'w' }, { domid: 9, access: 'b' }, { domid: 7, access: 'b' },
    ]));
    const s = (d: number) => store.connect({ domid: d });
    expect(readStr(s(7), '/x')).toBe('v');
    expect(code(s(7).write('/x', enc('7')))).toBe('EACCES');
    expect(readStr(s(8), '/x')).toBe('!EACCES');
    expect(code(s(8).write('/x', enc('8')))).toBe('OK');
    expect(code(s(9).write('/x', enc('9')))).toBe('OK');
    expect(readStr(s(9), '/x')).toBe('9');
    expect(readStr(s(10), '/x')).toBe('!EACCES');
    expect(code(s(10).write('/x', enc('10')))).toBe('EACCES');
    // A read-only domain is not the owner either.
    expect(code(s(9).setPerms('/x', [{ domid: 0, access: 'b' }]))).toBe('EACCES');
  });

  it('dom0 (privileged) passes every check, whoever owns the node', () => {
    const { store, dom0, home5, g5 } = setup();
    val(g5.write('secret', enc('s')));
    expect(val(dom0.getPerms(`${home5}/secret`))).toEqual([{ domid: 5, access: 'n' }]);
    expect(readStr(dom0, `${home5}/secret`)).toBe('s');
    expect(code(dom0.write(`${home5}/secret`, enc('t')))).toBe('OK');
    expect(code(dom0.setPerms(`${home5}/secret`, [{ domid: 7, access: 'n' }]))).toBe('OK');
    expect(store.tree.ownedBy(5)).toBe(1);
    expect(store.tree.ownedBy(7)).toBe(2);
    expect(code(dom0.rm(`${home5}/secret`))).toBe('OK');
    expect(store.tree.ownedBy(7)).toBe(1);
    // A domid-0 session that is not privileged is an ordinary domain.
    const plain0 = store.connect({ domid: 0, privileged: false });
    expect(readStr(plain0, home5)).toBe('!EACCES');
  });

  it('new nodes inherit the parent perms; an unprivileged creator becomes owner, keeping the letter', () => {
    const { store, dom0, home5, g5, g7 } = setup();
    val(dom0.setPerms(home5, [{ domid: 5, access: 'r' }, { domid: 7, access: 'b' }]));
    expect(code(g5.write('a/b', enc('x')))).toBe('OK');
    expect(val(dom0.getPerms(`${home5}/a`))).toEqual([{ domid: 5, access: 'r' }, { domid: 7, access: 'b' }]);
    expect(val(dom0.getPerms(`${home5}/a/b`))).toEqual([{ domid: 5, access: 'r' }, { domid: 7, access: 'b' }]);
    expect(store.tree.ownedBy(5)).toBe(3);
    expect(code(g7.write(`${home5}/c/d`, enc('y')))).toBe('OK');
    expect(val(dom0.getPerms(`${home5}/c`))).toEqual([{ domid: 7, access: 'r' }, { domid: 7, access: 'b' }]);
    expect(val(dom0.getPerms(`${home5}/c/d`))).toEqual([{ domid: 7, access: 'r' }, { domid: 7, access: 'b' }]);
    expect(store.tree.ownedBy(7)).toBe(3);
    // dom0 creating keeps the parent's owner.
    expect(code(dom0.write(`${home5}/e/f`, enc('z')))).toBe('OK');
    expect(val(dom0.getPerms(`${home5}/e/f`))).toEqual([{ domid: 5, access: 'r' }, { domid: 7, access: 'b' }]);
    expect(store.tree.ownedBy(5)).toBe(5);
    expect(store.stats.nodes).toBe(13);
    // 5 owns c's parent but not c: it may read c (letter r) but not write it.
    expect(readStr(g5, 'c/d')).toBe('y');
    expect(code(g5.write('c/d', enc('no')))).toBe('EACCES');
  });

  it('an unprivileged owner may change the perms but not the owner (EPERM)', () => {
    const { store, dom0, g5 } = setup();
    val(g5.write('n', enc('v')));
    expect(code(g5.setPerms('n', [{ domid: 7, access: 'b' }]))).toBe('EPERM');
    expect(code(g5.setPerms('n', [{ domid: 0, access: 'b' }]))).toBe('EPERM');
    expect(val(g5.getPerms('n'))).toEqual([{ domid: 5, access: 'n' }]);
    expect(code(g5.setPerms('n', [{ domid: 5, access: 'b' }, { domid: 7, access: 'r' }]))).toBe('OK');
    expect(val(dom0.getPerms('/local/domain/5/n'))).toEqual([{ domid: 5, access: 'b' }, { domid: 7, access: 'r' }]);
    expect(store.tree.ownedBy(5)).toBe(2);
  });

  it('setPerms by a non-owner is EACCES even with write access', () => {
    const { dom0, home5, g7 } = setup();
    val(dom0.write(`${home5}/n`, enc('v')));
    val(dom0.setPerms(`${home5}/n`, [{ domid: 5, access: 'n' }, { domid: 7, access: 'b' }]));
    expect(code(g7.write(`${home5}/n`, enc('w')))).toBe('OK');
    expect(code(g7.setPerms(`${home5}/n`, [{ domid: 5, access: 'b' }]))).toBe('EACCES');
    expect(code(g7.setPerms(`${home5}/n`, [{ domid: 7, access: 'b' }]))).toBe('EACCES');
    expect(val(dom0.getPerms(`${home5}/n`))).toEqual([{ domid: 5, access: 'n' }, { domid: 7, access: 'b' }]);
  });

  it('setPerms with an empty list is EINVAL', () => {
    const { dom0 } = setup();
    expect(code(dom0.setPerms('/tool', []))).toBe('EINVAL');
  });

  it('missing nodes: ENOENT if the nearest existing ancestor is readable, EACCES if not', () => {
    const { store, dom0, home5, g7 } = setup();
    // home5 is [n5]: domain 7 cannot read it.
    expect(code(g7.read(`${home5}/missing`))).toBe('EACCES');
    expect(code(g7.read(`${home5}/m1/m2/m3`))).toBe('EACCES');
    expect(code(g7.directory(`${home5}/missing`))).toBe('EACCES');
    expect(code(g7.getPerms(`${home5}/missing`))).toBe('EACCES');
    // The root is n0: missing top-level nodes are EACCES for guests, ENOENT for dom0.
    expect(code(g7.read('/nonexistent'))).toBe('EACCES');
    expect(code(dom0.read('/nonexistent'))).toBe('ENOENT');
    val(dom0.setPerms(home5, [{ domid: 5, access: 'r' }]));
    expect(code(g7.read(`${home5}/missing`))).toBe('ENOENT');
    expect(code(g7.read(`${home5}/m1/m2/m3`))).toBe('ENOENT');
    expect(code(g7.directory(`${home5}/missing`))).toBe('ENOENT');
    // An existing node that cannot be read is EACCES.
    val(dom0.write(`${home5}/hidden`, enc('h')));
    val(dom0.setPerms(`${home5}/hidden`, [{ domid: 5, access: 'n' }]));
    expect(code(g7.read(`${home5}/hidden`))).toBe('EACCES');
    // Below an unreadable node the answer is EACCES again.
    expect(code(g7.read(`${home5}/hidden/x`))).toBe('EACCES');
    // Writes under a read-only parent are refused and create nothing.
    const before = store.stats.nodes;
    expect(code(g7.write(`${home5}/new`, enc('x')))).toBe('EACCES');
    expect(code(g7.mkdir(`${home5}/new/deeper`))).toBe('EACCES');
    expect(code(g7.write(`${home5}/hidden/x`, enc('x')))).toBe('EACCES');
    expect(code(g7.rm(`${home5}/hidden`))).toBe('EACCES');
    expect(store.stats.nodes).toBe(before);
    expect(store.tree.ownedBy(7)).toBe(1);
  });

  // BUG: xenstored's errno_from_parents() checks the *requested* permission (XS_PERM_WRITE for
  // write/mkdir/rm) against the nearest existing ancestor, and construct_node() has no check of
  // its own, so a domain with `w` on a parent can create children. Here `missing()` demands read
  // access first and answers EACCES.
  it('write access alone on the parent lets a domain create children (as in xenstored)', () => {
    const { store, dom0, home5, g7 } = setup();
    val(dom0.write(`${home5}/drop`, new Uint8Array(0)));
    val(dom0.setPerms(`${home5}/drop`, [{ domid: 5, access: 'n' }, { domid: 7, access: 'w' }]));
    expect(code(g7.write(`${home5}/drop/box`, enc('x')))).toBe('OK');
    expect(store.tree.ownedBy(7)).toBe(2);
  });
});

describe('quotas (unprivileged only)', () => {
  it('nodes per domain: ENOSPC beyond the quota, with no partial creation', () => {
    const { store, dom0 } = newStore({ nodesPerDomain: 5 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    expect(store.tree.ownedBy(5)).toBe(1);
    expect(code(g.write('a', enc('1')))).toBe('OK');
    expect(code(g.write('b/c', enc('2')))).toBe('OK');
    expect(store.tree.ownedBy(5)).toBe(4);
    expect(store.stats.nodes).toBe(9);
    // Needs three new nodes, one is left: nothing at all is created.
    expect(code(g.write('x/y/z', enc('3')))).toBe('ENOSPC');
    expect(code(g.mkdir('x/y'))).toBe('ENOSPC');
    expect(store.stats.nodes).toBe(9);
    expect(store.tree.ownedBy(5)).toBe(4);
    expect(code(g.read('x'))).toBe('ENOENT');
    expect(val(g.directory('/local/domain/5'))).toEqual(['a', 'b']);
    expect(code(g.write('d', enc('4')))).toBe('OK');
    expect(store.tree.ownedBy(5)).toBe(5);
    expect(code(g.write('e', enc('5')))).toBe('ENOSPC');
    expect(store.stats.nodes).toBe(10);
    // Existing nodes may still be rewritten at the quota.
    expect(code(g.write('a', enc('rewritten')))).toBe('OK');
    expect(code(g.mkdir('a'))).toBe('OK');
    // Removing frees room.
    expect(code(g.rm('b'))).toBe('OK');
    expect(store.tree.ownedBy(5)).toBe(3);
    expect(store.stats.nodes).toBe(8);
    expect(code(g.write('e/f', enc('6')))).toBe('OK');
    expect(store.tree.ownedBy(5)).toBe(5);
    // dom0 is never limited, even when it creates nodes the guest owns.
    expect(code(dom0.write('/local/domain/5/dom0/made/these', enc('x')))).toBe('OK');
    expect(store.tree.ownedBy(5)).toBe(8);
    expect(store.stats.nodes).toBe(13);
  });

  it('value size: ENOSPC above the quota, node not created', () => {
    const { store, dom0 } = newStore({ valueSize: 8 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    expect(code(g.write('ok', enc('12345678')))).toBe('OK');
    expect(code(g.write('big', enc('123456789')))).toBe('ENOSPC');
    expect(code(g.write('ok', enc('123456789')))).toBe('ENOSPC');
    expect(readStr(g, 'ok')).toBe('12345678');
    expect(code(g.read('big'))).toBe('ENOENT');
    expect(store.stats.nodes).toBe(7);
    expect(code(dom0.write('/local/domain/5/big', new Uint8Array(5000)))).toBe('OK');
    expect(val(g.read('big'))).toHaveLength(5000);
  });

  it('watches per connection: E2BIG beyond the quota', () => {
    const { store, dom0 } = newStore({ watchesPerConnection: 2 });
    const g = store.connect({ domid: 5 });
    expect(code(g.watch('/a', 't'))).toBe('OK');
    expect(code(g.watch('/b', 't'))).toBe('OK');
    expect(code(g.watch('/c', 't'))).toBe('E2BIG');
    expect(code(g.watch('/a', 't'))).toBe('EEXIST');
    expect(store.stats.watches).toBe(2);
    expect(code(g.unwatch('/a', 't'))).toBe('OK');
    expect(code(g.watch('/c', 't'))).toBe('OK');
    // Another connection of the same domain has its own count.
    const g2 = store.connect({ domid: 5 });
    expect(code(g2.watch('/a', 't'))).toBe('OK');
    for (let i = 0; i < 10; i++) expect(code(dom0.watch(`/w${i}`, 't'))).toBe('OK');
    expect(store.stats.watches).toBe(13);
  });

  it('transactions per connection: ENOSPC beyond the quota', () => {
    const { store, dom0 } = newStore({ transactionsPerConnection: 2 });
    const g = store.connect({ domid: 5 });
    const t1 = val(g.transactionStart());
    val(g.transactionStart());
    expect(code(g.transactionStart())).toBe('ENOSPC');
    expect(store.stats.transactions).toBe(2);
    val(g.transactionEnd(t1, false));
    expect(code(g.transactionStart())).toBe('OK');
    for (let i = 0; i < 5; i++) expect(code(dom0.transactionStart())).toBe('OK');
    expect(store.stats.transactions).toBe(7);
  });

  it('perms per node: ENOSPC beyond the quota', () => {
    const { store, dom0 } = newStore({ permsPerNode: 3 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    val(g.write('n', enc('v')));
    const p = (n: number): XsPerms => [{ domid: 5, access: 'n' }, ...Array.from({ length: n - 1 }, (_, i) => ({ domid: 10 + i, access: 'r' as const }))];
    expect(code(g.setPerms('n', p(3)))).toBe('OK');
    expect(code(g.setPerms('n', p(4)))).toBe('ENOSPC');
    expect(val(g.getPerms('n'))).toEqual(p(3));
    expect(code(dom0.setPerms('/local/domain/5/n', p(10)))).toBe('OK');
    expect(val(g.getPerms('n'))).toEqual(p(10));
  });

  it('nodes per transaction: ENOSPC once the transaction has touched the quota', () => {
    const { store, dom0 } = newStore({ nodesPerTransaction: 3 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    const t = val(g.transactionStart());
    expect(code(g.write('a', enc('1'), t))).toBe('OK'); // touches a and its parent
    expect(code(g.write('b', enc('2'), t))).toBe('OK'); // touches b
    expect(code(g.write('c', enc('3'), t))).toBe('ENOSPC');
    expect(code(g.transactionEnd(t, true))).toBe('OK');
    expect(val(g.directory('/local/domain/5'))).toEqual(['a', 'b']);
    expect(store.stats.nodes).toBe(8);
    // dom0 is not limited.
    const t0 = val(dom0.transactionStart());
    for (let i = 0; i < 10; i++) expect(code(dom0.write(`/x/${i}`, enc('v'), t0))).toBe('OK');
    expect(code(dom0.transactionEnd(t0, true))).toBe('OK');
    expect(store.stats.nodes).toBe(19);
  });

  // BUG: the nodes-per-transaction quota is only checked before each modifying request, so one
  // write that creates a deep path (or any number of reads) takes the transaction far past it.
  // xenstored checks it in access_node() for every node a transaction touches, reads included
  // (domain_max_chk(conn, ACC_TRANSNODES, trans->nodes + 1) -> ENOSPC).
  it('nodes per transaction: one deep write cannot exceed the quota', () => {
    const { dom0, store } = newStore({ nodesPerTransaction: 3 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    const t = val(g.transactionStart());
    expect(code(g.write('a/b/c/d/e/f', enc('1'), t))).toBe('ENOSPC');
  });

  it('nodes per transaction: reads count towards the quota', () => {
    const { dom0, store } = newStore({ nodesPerTransaction: 3 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    for (const n of ['a', 'b', 'c', 'd']) val(g.write(n, enc(n)));
    const t = val(g.transactionStart());
    const got = ['a', 'b', 'c', 'd'].map((n) => code(g.read(n, t)));
    expect(got).toEqual(['OK', 'OK', 'OK', 'ENOSPC']);
  });

  // BUG: the nodes-per-domain quota is checked only against each transaction's own view, never
  // at commit, so two transactions that each stay under the quota together exceed it.
  // xenstored re-checks at TRANSACTION_END (acc_fix_domains(..., chk_quota) -> ENOSPC).
  it('nodes per domain: committing transactions cannot take a domain past its quota', () => {
    const { store, dom0 } = newStore({ nodesPerDomain: 5 });
    makeHome(dom0, 5);
    const g = store.connect({ domid: 5 });
    const t1 = val(g.transactionStart());
    const t2 = val(g.transactionStart());
    for (const n of ['a', 'b', 'c']) expect(code(g.write(n, enc(n), t1))).toBe('OK');
    for (const n of ['d', 'e', 'f']) expect(code(g.write(n, enc(n), t2))).toBe('OK');
    expect(code(g.transactionEnd(t1, true))).toBe('OK');
    expect(store.tree.ownedBy(5)).toBe(4);
    expect(code(g.transactionEnd(t2, true))).toBe('ENOSPC');
    expect(store.tree.ownedBy(5)).toBe(4);
  });

  it('privileged connections are never limited', () => {
    const { store, dom0 } = newStore({
      nodesPerDomain: 1, watchesPerConnection: 1, transactionsPerConnection: 1, nodesPerTransaction: 1, permsPerNode: 1, valueSize: 1, pathLength: 1,
    });
    for (let i = 0; i < 5; i++) val(dom0.write(`/many/n${i}`, enc('long value')));
    expect(store.tree.ownedBy(0)).toBe(9);
    for (let i = 0; i < 3; i++) val(dom0.watch(`/many/n${i}`, 't'));
    const ts = [val(dom0.transactionStart()), val(dom0.transactionStart())];
    val(dom0.write('/many/tx/a/b', enc('v'), ts[0]));
    val(dom0.setPerms('/many', [{ domid: 0, access: 'n' }, { domid: 1, access: 'r' }, { domid: 2, access: 'r' }]));
    expect(code(dom0.transactionEnd(ts[0]!, true))).toBe('OK');
    expect(dec(val(dom0.read('/many/tx/a/b')))).toBe('v');
    expect(store.stats).toEqual({ nodes: 12, sessions: 1, watches: 3, transactions: 1 });
  });
});

describe('sessions', () => {
  it('close drops watches and transactions and detaches the session', () => {
    const { store, dom0 } = newStore();
    const g = store.connect({ domid: 5 });
    val(g.watch('/a', 't'));
    val(g.transactionStart());
    expect(store.stats).toEqual({ nodes: 3, sessions: 2, watches: 1, transactions: 1 });
    g.close();
    expect(g.isClosed).toBe(true);
    expect(store.stats).toEqual({ nodes: 3, sessions: 1, watches: 0, transactions: 0 });
    expect(code(g.read('/'))).toBe('ENOENT');
    expect(code(g.write('/x', enc('v')))).toBe('ENOENT');
    expect(code(g.transactionStart())).toBe('EINVAL');
    expect(code(g.watch('/a', 't'))).toBe('EINVAL');
    g.close();
    expect(store.stats.sessions).toBe(1);
    expect(store.stats.nodes).toBe(3);
    expect(dom0.isClosed).toBe(false);
  });
});
