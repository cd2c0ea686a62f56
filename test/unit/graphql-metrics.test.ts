import { isObjectType, isInterfaceType, isInputObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../../src/schema/index.js';

describe('useGraphQLMetrics', () => {
  it('may leave graphql_envelop_deprecated_field off: the schema has no deprecated field, argument or enum value', () => {
    const deprecated: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      if (isObjectType(type) || isInterfaceType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (field.deprecationReason) deprecated.push(`${type.name}.${field.name}`);
          for (const arg of field.args) if (arg.deprecationReason) deprecated.push(`${type.name}.${field.name}(${arg.name})`);
        }
      } else if (isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) if (field.deprecationReason) deprecated.push(`${type.name}.${field.name}`);
      } else if ('getValues' in type) {
        for (const value of type.getValues()) if (value.deprecationReason) deprecated.push(`${type.name}.${value.name}`);
      }
    }
    // Deprecating something? Turn the counter back on in src/plugins/use-graphql-metrics.ts.
    expect(deprecated).toEqual([]);
  });
});
