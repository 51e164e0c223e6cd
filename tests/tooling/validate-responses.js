#!/usr/bin/env node
// Checks recorded HTTP answers against an OpenAPI 3.1 document: every answer
// must have a documented status for its operation, the documented required
// headers (each value valid against its schema), a documented media type,
// and a body valid against that media type's schema. Schemas are checked by
// ajv (JSON Schema 2020-12, strict); this file only finds the operation and
// the response object, as the document's path templates say.
//
// usage: node validate-responses.js <openapi.json> <record.jsonl>
//   A record is one JSON object per line:
//   {"method", "path", "status", "headers": {lower-case name: value}, "body", "test"}
// Exits 1 when any answer does not match (or nothing was recorded), 2 on bad use.
'use strict';

const fs = require('fs');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const DOC_ID = 'https://todo.dev/openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function pointerEscape(s) {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function pointerGet(doc, pointer) {
  if (!pointer.startsWith('#/')) {
    throw new Error(`only local references are supported: ${pointer}`);
  }
  let node = doc;
  for (const raw of pointer.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) {
      throw new Error(`unresolvable reference ${pointer}`);
    }
    node = node[key];
  }
  return node;
}

// Follows OpenAPI $refs (responses, headers); returns the object and where it lives.
function deref(doc, node, pointer) {
  const seen = new Set();
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    if (seen.has(node.$ref)) {
      throw new Error(`reference cycle at ${node.$ref}`);
    }
    seen.add(node.$ref);
    pointer = node.$ref;
    node = pointerGet(doc, pointer);
  }
  return { node, pointer };
}

class Checker {
  constructor(doc) {
    this.doc = doc;
    // strict: an unknown keyword or format in the document is an error,
    // so a misspelt constraint cannot pass silently.
    this.ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
    addFormats(this.ajv);
    // OpenAPI's own schema annotations.
    this.ajv.addVocabulary(['example', 'xml', 'externalDocs', 'discriminator']);
    this.keys = new Map();  // document pointer -> $defs key
    this.defs = {};
    for (const name of Object.keys((doc.components || {}).schemas || {})) {
      this.schemaKey(`#/components/schemas/${pointerEscape(name)}`);
    }
    for (const pointer of this.schemaPointers()) {
      this.schemaKey(pointer);
    }
    // Only the schemas go to ajv, in one document of $defs: the rest of an
    // OpenAPI document is not JSON Schema, and strict mode would refuse it.
    this.ajv.addSchema({ $id: DOC_ID, $defs: this.defs });
    // Every schema compiles now, tested by the records or not: a schema
    // ajv refuses is an error of the document.
    for (const key of this.keys.values()) {
      this.ajv.getSchema(`${DOC_ID}#/$defs/${key}`);
    }
    this.compiled = new Map();
    this.routes = Object.keys(doc.paths || {}).map((template) => {
      const literal = template.split('/').filter((s) => s && !s.startsWith('{')).length;
      const source = template
        .split(/(\{[^}/]+\})/)
        .map((part) => (/^\{[^}/]+\}$/.test(part) ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('');
      return { template, literal, re: new RegExp(`^${source}$`) };
    });
    // Literal segments win over templated ones, as routers do.
    this.routes.sort((a, b) => b.literal - a.literal);
  }

  // The $defs key of the schema at `pointer`, copied with its references
  // (and the schemas they name) moved into $defs.
  schemaKey(pointer) {
    if (!this.keys.has(pointer)) {
      const key = `s${this.keys.size}`;
      this.keys.set(pointer, key);
      this.defs[key] = this.rewrite(pointerGet(this.doc, pointer));
    }
    return this.keys.get(pointer);
  }

  rewrite(node) {
    if (Array.isArray(node)) {
      return node.map((n) => this.rewrite(n));
    }
    if (node === null || typeof node !== 'object') {
      return node;
    }
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === '$ref' && typeof v === 'string' ? `#/$defs/${this.schemaKey(v)}` : this.rewrite(v);
    }
    return out;
  }

  // Where the document keeps schemas of headers and bodies.
  *schemaPointers() {
    const inResponse = function* (response, at) {
      for (const [name, h] of Object.entries(response.headers || {})) {
        if (!h.$ref && h.schema) {
          yield `${at}/headers/${pointerEscape(name)}/schema`;
        }
      }
      for (const [media, m] of Object.entries(response.content || {})) {
        if (m.schema) {
          yield `${at}/content/${pointerEscape(media)}/schema`;
        }
      }
    };
    const components = this.doc.components || {};
    for (const [name, h] of Object.entries(components.headers || {})) {
      if (h.schema) {
        yield `#/components/headers/${pointerEscape(name)}/schema`;
      }
    }
    for (const [name, r] of Object.entries(components.responses || {})) {
      yield* inResponse(r, `#/components/responses/${pointerEscape(name)}`);
    }
    for (const [path, item] of Object.entries(this.doc.paths || {})) {
      for (const verb of METHODS) {
        for (const [status, r] of Object.entries((item[verb] || {}).responses || {})) {
          if (!r.$ref) {
            yield* inResponse(r, `#/paths/${pointerEscape(path)}/${verb}/responses/${pointerEscape(status)}`);
          }
        }
      }
    }
  }

  validator(pointer) {
    if (!this.compiled.has(pointer)) {
      const key = this.keys.get(pointer);
      if (!key) {
        throw new Error(`no schema registered at ${pointer}`);
      }
      this.compiled.set(pointer, this.ajv.getSchema(`${DOC_ID}#/$defs/${key}`));
    }
    return this.compiled.get(pointer);
  }

  // The response objects that may answer this request, and where they live.
  responsesFor(method, path) {
    const route = this.routes.find((r) => r.re.test(path));
    const unrouted = this.doc['x-unrouted'] || {};
    if (!route) {
      return { responses: unrouted['unknown-path'], pointer: '#/x-unrouted/unknown-path', what: `no path for ${path}` };
    }
    const item = this.doc.paths[route.template];
    const base = `#/paths/${pointerEscape(route.template)}`;
    // HEAD is answered as GET is, without a body (the document says so).
    const verb = method === 'head' && !item.head ? 'get' : method;
    if (!METHODS.includes(verb) || !item[verb]) {
      return { responses: unrouted['unknown-method'], pointer: '#/x-unrouted/unknown-method',
               what: `${method.toUpperCase()} ${route.template} (not an operation)` };
    }
    return { responses: item[verb].responses, pointer: `${base}/${verb}/responses`,
             what: `${verb.toUpperCase()} ${route.template} (${item[verb].operationId})` };
  }

  schemaErrors(pointer, value) {
    const validate = this.validator(pointer);
    if (validate(value)) {
      return [];
    }
    return validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}` +
      (e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '') + ` (${e.schemaPath})`);
  }

  check(rec) {
    const errors = [];
    const method = String(rec.method).toLowerCase();
    const { responses, pointer, what } = this.responsesFor(method, rec.path);
    if (!responses) {
      return { what, errors: ['the document says nothing about this request'] };
    }
    const status = String(rec.status);
    const key = [status, `${status[0]}XX`, 'default'].find((k) => k in responses);
    if (!key) {
      return { what, errors: [`status ${status} is not documented (documented: ${Object.keys(responses).join(', ')})`] };
    }
    const { node: response, pointer: at } = deref(this.doc, responses[key], `${pointer}/${pointerEscape(key)}`);
    const headers = rec.headers || {};

    for (const [name, value] of Object.entries(response.headers || {})) {
      if (name.toLowerCase() === 'content-type') {
        continue;  // OpenAPI: described by `content`, never by `headers`
      }
      const { node: header, pointer: hp } = deref(this.doc, value, `${at}/headers/${pointerEscape(name)}`);
      const got = headers[name.toLowerCase()];
      if (got === undefined) {
        if (header.required) {
          errors.push(`header ${name} is required and missing`);
        }
        continue;
      }
      if (header.schema) {
        for (const e of this.schemaErrors(`${hp}/schema`, got)) {
          errors.push(`header ${name}: ${JSON.stringify(got)} ${e}`);
        }
      }
    }

    const body = rec.body || '';
    if (method === 'head') {
      if (body.length) {
        errors.push('a HEAD answer has a body');
      }
      return { what, errors };
    }
    const content = response.content;
    if (!content) {
      if (body.length) {
        errors.push(`documented without a body, but has ${body.length} bytes`);
      }
      return { what, errors };
    }
    const contentType = headers['content-type'];
    if (!contentType) {
      return { what, errors: errors.concat(['no Content-Type, but the document gives a body']) };
    }
    const media = contentType.split(';')[0].trim().toLowerCase();
    const mediaKey = Object.keys(content).find((k) => k.toLowerCase() === media) ||
      Object.keys(content).find((k) => k.endsWith('/*') && media.startsWith(k.slice(0, -1))) ||
      ('*/*' in content ? '*/*' : undefined);
    if (!mediaKey) {
      return { what, errors: errors.concat([`Content-Type ${media} is not documented (documented: ${Object.keys(content).join(', ')})`]) };
    }
    if (!content[mediaKey].schema) {
      return { what, errors };
    }
    let value = body;
    if (media === 'application/json' || media.endsWith('+json')) {
      try {
        value = JSON.parse(body);
      } catch (e) {
        return { what, errors: errors.concat([`the body is not JSON: ${e.message}`]) };
      }
    }
    for (const e of this.schemaErrors(`${at}/content/${pointerEscape(mediaKey)}/schema`, value)) {
      errors.push(`body ${e}`);
    }
    return { what, errors };
  }
}

// Checks `records` against `doc`: the exit code (0 all match, 1 otherwise)
// and the report to print.
function run(doc, records) {
  if (records.length === 0) {
    return { code: 1, report: 'no answers were recorded, so nothing was checked\n' };
  }
  const checker = new Checker(doc);
  let failed = 0;
  let report = '';
  const seen = new Map();
  for (const [i, rec] of records.entries()) {
    let result;
    try {
      result = checker.check(rec);
    } catch (e) {
      result = { what: '?', errors: [`cannot check: ${e.message}`] };
    }
    const shape = `${result.what} ${rec.status}`;
    seen.set(shape, (seen.get(shape) || 0) + 1);
    if (result.errors.length) {
      failed += 1;
      // One report per shape of failure is enough to act on.
      if (seen.get(shape) === 1 || failed <= 20) {
        report += `MISMATCH ${rec.method} ${rec.path} -> ${rec.status} [${result.what}]` +
          `${rec.test ? ` in ${rec.test}` : ''} (record ${i + 1})\n` +
          result.errors.map((e) => `  - ${e}\n`).join('') +
          `  body: ${String(rec.body || '').slice(0, 400)}\n`;
      }
    }
  }
  report += `checked ${records.length} answers against the OpenAPI document: ` +
    `${failed} mismatched, ${seen.size} distinct operation/status pairs\n`;
  return { code: failed ? 1 : 0, report };
}

function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write('usage: node validate-responses.js <openapi.json> <record.jsonl>\n');
    return 2;
  }
  const doc = JSON.parse(fs.readFileSync(argv[0], 'utf8'));
  const lines = fs.existsSync(argv[1]) ? fs.readFileSync(argv[1], 'utf8').split('\n').filter((l) => l.trim()) : [];
  const { code, report } = run(doc, lines.map((l) => JSON.parse(l)));
  (code ? process.stderr : process.stdout).write(`${argv[1]}: ${report}`);
  return code;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`validate-responses: ${e.stack || e}\n`);
    process.exitCode = 2;
  }
}

module.exports = { Checker, run };
