/**
 * The xl.cfg file format (xl.cfg(5); libxlu's `libxlu_cfg_l.l` / `libxlu_cfg_y.y`), without IO,
 * and the `vdispl` devices of a parsed file.
 *
 *   file    := { [ IDENT "=" value ] ( NEWLINE | ";" ) }     (the last line may lack its newline)
 *   value   := STRING | NUMBER | "[" { NEWLINE } [ atom { "," atom } [ "," ] ] "]"
 *   atom    := { NEWLINE } ( STRING | NUMBER ) { NEWLINE }
 *
 * Comments run from "#" to the end of the line (not inside strings); blanks are spaces, tabs and
 * CRs. Strings are in '...' or "..." and may not span lines; both take C escapes (\a \b \f \n \r
 * \t \v \\ \" \' \xHH \ooo), as libxlu's dequoting means to (the copies of libxlu_cfg.c we read
 * drop the byte of a \x or octal escape, and silently drop unknown escapes: we decode the first
 * two as C does and reject the last). Later settings of a key replace earlier ones, as in xl.
 *
 * Deviations from libxlu: identifiers may hold capitals ([A-Za-z_][A-Za-z0-9_]*); numbers must be
 * decimal without a leading zero or 0x-hex (xl's strtol would read "010" as octal, we refuse it),
 * and become JS numbers; lists hold only strings and numbers (no nesting); "+=" is not
 * supported. Errors carry "file:line:column" (1-based; a column counts UTF-16 code units, a tab
 * counts one).
 */
import { parseVdisplSpec, VdisplSpecError, type VdisplDeviceSpec } from './vdispl-spec.js';

export type XlValue = string | number | readonly (string | number)[];

/** A syntax error in an xl.cfg file, or a bad value in it. Message: `file:line:column: reason`. */
export class XlConfigError extends Error {
  readonly fileName: string;
  /** 1-based; 0 when unknown (a value of a map that parseXlConfig did not make). */
  readonly line: number;
  /** 1-based; 0 when unknown. */
  readonly column: number;
  /** The message without the position prefix. */
  readonly reason: string;

  constructor(fileName: string, line: number, column: number, reason: string, options?: ErrorOptions) {
    super(`${line > 0 ? `${fileName}:${line}:${column}` : fileName}: ${reason}`, options);
    this.name = 'XlConfigError';
    this.fileName = fileName;
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

interface Pos {
  readonly line: number;
  readonly column: number;
}

/** Where a setting's value was written: the value, and each element of a list. */
interface ValuePos {
  /** The value parsed there (positions apply only while the map still holds it). */
  readonly value: XlValue;
  readonly at: Pos;
  readonly elements: readonly Pos[];
}

/** Positions of the values in maps made by parseXlConfig, for vdisplDevicesFromConfig's errors. */
const positions = new WeakMap<Map<string, XlValue>, Map<string, ValuePos>>();

type Token =
  | { readonly kind: 'ident'; readonly text: string; readonly at: Pos }
  | { readonly kind: 'string'; readonly value: string; readonly at: Pos }
  | { readonly kind: 'number'; readonly value: number; readonly at: Pos }
  | { readonly kind: '=' | '[' | ']' | ',' | ';' | 'newline' | 'eof'; readonly at: Pos };

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'",
};

/** An identifier or a number (sticky: matches only at lastIndex). */
const WORD = /[A-Za-z0-9_]+/y;

/** Splits the text into tokens; comments and blanks are dropped, newlines kept. */
class Lexer {
  private i = 0;
  private line = 1;
  private lineStart = 0;

  constructor(
    private readonly text: string,
    private readonly fail: (at: Pos, reason: string) => XlConfigError,
  ) {}

  private pos(index = this.i): Pos {
    return { line: this.line, column: index - this.lineStart + 1 };
  }

  next(): Token {
    const s = this.text;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === ' ' || c === '\t' || c === '\r') {
        this.i++;
      } else if (c === '#') {
        while (this.i < s.length && s[this.i] !== '\n') this.i++;
      } else {
        break;
      }
    }
    const at = this.pos();
    if (this.i >= s.length) return { kind: 'eof', at };
    const c = s[this.i]!;
    if (c === '\n') {
      this.i++;
      this.line++;
      this.lineStart = this.i;
      return { kind: 'newline', at };
    }
    if (c === '=' || c === '[' || c === ']' || c === ',' || c === ';') {
      this.i++;
      return { kind: c, at };
    }
    if (c === '"' || c === "'") return { kind: 'string', value: this.string(c), at };
    WORD.lastIndex = this.i;
    const word = WORD.exec(s)?.[0];
    if (word === undefined) throw this.fail(at, `unexpected character ${JSON.stringify(c)}`);
    this.i += word.length;
    if (/^[A-Za-z_]/.test(word)) return { kind: 'ident', text: word, at };
    return { kind: 'number', value: this.number(word, at), at };
  }

  private number(word: string, at: Pos): number {
    let v: number;
    if (/^(?:0|[1-9][0-9]*)$/.test(word)) v = Number(word);
    else if (/^0[xX][0-9a-fA-F]+$/.test(word)) v = Number.parseInt(word.slice(2), 16);
    else if (/^0[0-9]+$/.test(word)) throw this.fail(at, `number ${word} has a leading zero (xl would read it as octal)`);
    else throw this.fail(at, `bad number ${JSON.stringify(word)}`);
    if (!Number.isSafeInteger(v)) throw this.fail(at, `number ${word} is too large`);
    return v;
  }

  /** Reads a quoted string starting at the opening quote; returns it unescaped. */
  private string(quote: string): string {
    const s = this.text;
    const open = this.pos();
    let out = '';
    this.i++;
    for (;;) {
      const c = s[this.i];
      if (c === undefined || c === '\n') throw this.fail(open, 'unterminated string');
      if (c === quote) {
        this.i++;
        return out;
      }
      if (c !== '\\') {
        out += c;
        this.i++;
        continue;
      }
      const escAt = this.pos();
      const e = s[this.i + 1];
      if (e === undefined || e === '\n') throw this.fail(open, 'unterminated string');
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        this.i += 2;
      } else if (e === 'x') {
        const hex = /^[0-9a-fA-F]{2}/.exec(s.slice(this.i + 2, this.i + 4))?.[0];
        if (hex === undefined) throw this.fail(escAt, 'escape \\x needs two hex digits');
        out += String.fromCharCode(Number.parseInt(hex, 16));
        this.i += 4;
      } else if (e >= '0' && e <= '7') {
        const oct = /^[0-7]{1,3}/.exec(s.slice(this.i + 1, this.i + 4))?.[0] ?? e;
        const v = Number.parseInt(oct, 8);
        if (v > 0xff) throw this.fail(escAt, `octal escape \\${oct} is above \\377`);
        out += String.fromCharCode(v);
        this.i += 1 + oct.length;
      } else {
        throw this.fail(escAt, `unknown escape \\${e}`);
      }
    }
  }
}

/**
 * Parses the text of an xl.cfg file into its settings, in the order of their first appearance.
 * Throws XlConfigError.
 */
export function parseXlConfig(text: string, fileName = 'config'): Map<string, XlValue> {
  const fail = (at: Pos, reason: string) => new XlConfigError(fileName, at.line, at.column, reason);
  const lexer = new Lexer(text, fail);
  const settings = new Map<string, XlValue>();
  const where = new Map<string, ValuePos>();
  /** The string or number of a token where a value is due; explains the common mistakes. */
  const atom = (t: Token, inList: boolean): string | number => {
    switch (t.kind) {
      case 'string':
      case 'number':
        return t.value;
      case 'ident':
        throw fail(t.at, `bare word ${t.text} is not a value (quote it: "${t.text}")`);
      case '[':
        throw fail(t.at, inList ? 'lists cannot be nested' : 'expected a value');
      case '=':
      case ']':
      case ',':
      case ';':
      case 'newline':
      case 'eof':
        throw fail(t.at, inList ? 'expected a string or a number in the list' : 'expected a value after "="');
    }
  };
  const nextSkippingNewlines = (): Token => {
    let t = lexer.next();
    while (t.kind === 'newline') t = lexer.next();
    return t;
  };

  for (let tok = lexer.next(); tok.kind !== 'eof'; ) {
    if (tok.kind === 'newline' || tok.kind === ';') {
      tok = lexer.next();
      continue;
    }
    if (tok.kind !== 'ident') throw fail(tok.at, 'expected a setting name');
    const key = tok.text;
    tok = lexer.next();
    if (tok.kind !== '=') throw fail(tok.at, `expected "=" after ${key}`);
    tok = lexer.next();
    const valueAt = tok.at;
    const elements: Pos[] = [];
    let value: XlValue;
    if (tok.kind === '[') {
      const list: (string | number)[] = [];
      tok = nextSkippingNewlines();
      while (tok.kind !== ']') {
        if (tok.kind === 'eof') throw fail(valueAt, 'unterminated list');
        elements.push(tok.at);
        list.push(atom(tok, true));
        tok = nextSkippingNewlines();
        if (tok.kind === ',') tok = nextSkippingNewlines();
        else if (tok.kind === 'eof') throw fail(valueAt, 'unterminated list');
        else if (tok.kind !== ']') throw fail(tok.at, 'expected "," or "]" in the list');
      }
      value = list;
    } else {
      value = atom(tok, false);
    }
    tok = lexer.next();
    if (tok.kind !== 'newline' && tok.kind !== ';' && tok.kind !== 'eof') {
      throw fail(tok.at, `expected the end of the line after the value of ${key}`);
    }
    settings.set(key, value);
    where.set(key, { value, at: valueAt, elements });
  }
  positions.set(settings, where);
  return settings;
}

/**
 * The vdispl devices of a parsed config: its `vdispl` setting, a list of spec strings (none if
 * absent). Throws XlConfigError, positioned at the offending string when the map came from
 * parseXlConfig; a bad spec's VdisplSpecError is its `cause`.
 */
export function vdisplDevicesFromConfig(cfg: Map<string, XlValue>, fileName = 'config'): VdisplDeviceSpec[] {
  const value = cfg.get('vdispl');
  if (value === undefined) return [];
  const recorded = positions.get(cfg)?.get('vdispl');
  const where = recorded?.value === value ? recorded : undefined;
  const fail = (at: Pos | undefined, reason: string, options?: ErrorOptions) =>
    new XlConfigError(fileName, at?.line ?? 0, at?.column ?? 0, reason, options);
  if (typeof value !== 'object') {
    throw fail(where?.at, 'vdispl must be a list of strings, e.g. vdispl = [ "connectors=id0:1920x1080" ]');
  }
  return value.map((spec, devid) => {
    const at = where?.elements[devid];
    if (typeof spec !== 'string') throw fail(at, `vdispl[${devid}]: must be a string, not the number ${spec}`);
    try {
      return parseVdisplSpec(spec, devid);
    } catch (e) {
      if (e instanceof VdisplSpecError) throw fail(at, e.message, { cause: e });
      throw e;
    }
  });
}
