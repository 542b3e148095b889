// `audex schema`: the JSON Schema of the config, generated from the schema that validates it.
import { configJsonSchema } from '../../config/schema.js';
import type { Reporter } from '../reporter.js';

export async function schemaCommand(reporter: Reporter): Promise<number> {
  reporter.out(JSON.stringify(configJsonSchema(), null, 2));
  return 0;
}
