// `audex schema`: the JSON Schema of the config, generated from the schema that validates it.
import { configJsonSchema } from '../../config/schema.js';
import { datasetConfigJsonSchema } from '../../config/dataset-schema.js';
import type { Reporter } from '../reporter.js';

export async function schemaCommand(reporter: Reporter, flags: { datasets?: boolean } = {}): Promise<number> {
  reporter.out(JSON.stringify(flags.datasets ? datasetConfigJsonSchema() : configJsonSchema(), null, 2));
  return 0;
}
