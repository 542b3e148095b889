// Reads a dataflow config (YAML or JSON), validates it whole and reports every problem
// at once as `file:line path: message`, before anything else is read or written.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { ConfigError } from '../errors.js';
import { validateDataflow, type Dataflow } from './schema.js';
import { isDatasetConfig, validateDatasetDataflow, type DatasetDataflow } from './dataset-schema.js';
import { validateHttpDataflow, type HttpDataflow } from './http-schema.js';

export interface LoadedConfig {
  /** Audience dataflows (absent means audiences too, for callers that build one by hand). */
  kind?: 'audiences';
  dataflow: Dataflow;
  /** Absolute path of the config file; relative local paths in it resolve against its folder. */
  file: string;
  dir: string;
}

/** A dataflow with `datasets:` (README "Export datasets"): dataset batches copied to files. */
export interface LoadedDatasetConfig {
  kind: 'datasets';
  dataflow: DatasetDataflow;
  file: string;
  dir: string;
}

/** An HTTP API dataflow (README "Send to an HTTP endpoint"): `destination.type: http`. */
export interface LoadedHttpConfig {
  kind: 'http';
  dataflow: HttpDataflow;
  file: string;
  dir: string;
}

export type AnyLoadedConfig = LoadedConfig | LoadedDatasetConfig | LoadedHttpConfig;

export async function loadConfig(file: string): Promise<AnyLoadedConfig> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      `cannot read config ${abs}: ${code === 'ENOENT' ? 'no such file' : String(error)}; pass the dataflow file with --config FILE`,
    );
  }
  const parsed = parseAnyConfigText(text, abs);
  return { ...parsed, file: abs, dir: path.dirname(abs) } as AnyLoadedConfig;
}

export function parseConfigText(text: string, file: string): Dataflow {
  const parsed = parseAnyConfigText(text, file);
  if (parsed.kind !== 'audiences')
    throw new ConfigError(
      [
        `${file}: this is ${parsed.kind === 'http' ? 'an HTTP API dataflow (destination.type: http)' : 'a dataset dataflow (it has datasets:)'}; expected audiences`,
      ],
      file,
    );
  return parsed.dataflow;
}

type ParsedConfig =
  | { kind: 'audiences'; dataflow: Dataflow }
  | { kind: 'datasets'; dataflow: DatasetDataflow }
  | { kind: 'http'; dataflow: HttpDataflow };

function isHttp(raw: object): boolean {
  const dest = (raw as Record<string, unknown>)['destination'];
  return dest !== null && typeof dest === 'object' && (dest as Record<string, unknown>)['type'] === 'http';
}

/** Parses and validates any kind of dataflow: `datasets:` makes it a dataset dataflow, `destination.type: http` an HTTP one. */
export function parseAnyConfigText(text: string, file: string): ParsedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return `line ${pos.line}: ${e.message.split('\n')[0]}`;
      }),
      file,
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(
      [`${file}: the config must be a mapping of keys (name, id, source, destination, format, mapping, audiences)`],
      file,
    );
  }
  const http = isHttp(raw);
  const datasets = !http && isDatasetConfig(raw);
  const result = http
    ? validateHttpDataflow(raw as Record<string, unknown>)
    : datasets
      ? validateDatasetDataflow(raw)
      : validateDataflow(raw);
  if (result.ok) {
    if (http) return { kind: 'http', dataflow: result.dataflow as HttpDataflow };
    return datasets
      ? { kind: 'datasets', dataflow: result.dataflow as DatasetDataflow }
      : { kind: 'audiences', dataflow: result.dataflow as Dataflow };
  }
  throw new ConfigError(
    result.issues.map((issue) => {
      const line = lineOf(doc, lines, issue.path);
      return `${line ? `line ${line}: ` : ''}${formatPath(issue.path)}: ${issue.message}`;
    }),
    file,
  );
}

export function formatPath(keys: readonly (string | number)[]): string {
  if (keys.length === 0) return '(top level)';
  return keys.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), '');
}

/** The line of the deepest node on the path that exists in the document. */
function lineOf(doc: Document, lines: LineCounter, keys: (string | number)[]): number | undefined {
  for (let n = keys.length; n >= 0; n--) {
    const node = doc.getIn(keys.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}
