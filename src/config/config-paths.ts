// `--config` names one config file, several (repeat the flag), or a folder: every *.yaml,
// *.yml and *.json file directly in it, in name order (README "Several dataflows in one invocation").
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';

export interface ConfigPaths {
  files: string[];
  /** More than one --config, or a folder: the command reports per dataflow ({ dataflows: [...] }). */
  several: boolean;
}

const CONFIG_FILE = /\.(ya?ml|json)$/i;

export async function resolveConfigPaths(args: string | readonly string[]): Promise<ConfigPaths> {
  const list = typeof args === 'string' ? [args] : [...args];
  const files: string[] = [];
  let folder = false;
  for (const arg of list) {
    const info = await stat(arg).catch(() => null);
    if (!info?.isDirectory()) {
      files.push(arg); // a missing file is reported by loadConfig, naming it
      continue;
    }
    folder = true;
    const names = (await readdir(arg, { withFileTypes: true }))
      .filter((e) => e.isFile() && CONFIG_FILE.test(e.name))
      .map((e) => e.name)
      .sort();
    if (names.length === 0)
      throw new ConfigError(
        `--config ${arg}: the folder holds no *.yaml, *.yml or *.json config; name a config file, or put the dataflow configs in it`,
      );
    files.push(...names.map((name) => path.join(arg, name)));
  }
  const unique = [...new Set(files.map((f) => path.resolve(f)))];
  return {
    files:
      unique.length === files.length
        ? files
        : files.filter((f, i) => files.findIndex((g) => path.resolve(g) === path.resolve(f)) === i),
    several: folder || unique.length > 1,
  };
}
