// `audex schema`: the JSON Schema of the config, generated from the schema that validates it.
import { configJsonSchema } from '../../config/schema.js';
import { datasetConfigJsonSchema } from '../../config/dataset-schema.js';
import { httpConfigJsonSchema } from '../../config/http-schema.js';
import { ConfigError } from '../../errors.js';
import type { Reporter } from '../reporter.js';

export async function schemaCommand(
  reporter: Reporter,
  flags: { datasets?: boolean; http?: boolean } = {},
): Promise<number> {
  if (flags.datasets && flags.http)
    throw new ConfigError('schema: give --datasets or --http, not both (one schema per kind of dataflow)');
  reporter.out(
    JSON.stringify(
      flags.datasets ? datasetConfigJsonSchema() : flags.http ? httpConfigJsonSchema() : configJsonSchema(),
      null,
      2,
    ),
  );
  return 0;
}
