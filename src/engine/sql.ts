// The one place identifiers and literals are quoted for DuckDB. Every SQL builder in
// engine/ goes through these, so no value from a config or a snapshot reaches SQL raw.

export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function literal(value: string | number | boolean | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  return `'${value.replaceAll("'", "''")}'`;
}

/** A list of string literals, for IN (...) or list values. */
export function literalList(values: readonly string[]): string {
  return values.map(literal).join(', ');
}

/** JSONPath for json_extract, with each key quoted so dots and quotes in names are safe. */
export function jsonPath(path: readonly string[]): string {
  return literal(`$${path.map((p) => `."${p.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join('')}`);
}

/** A struct field access chain: base."a"."b". */
export function fieldChain(base: string, path: readonly string[]): string {
  return [base, ...path.map(ident)].join('.');
}
