// Sends process events to an OTLP endpoint with the official OpenTelemetry JS SDK.
// usage: node send_logs.js <grpc|http|proto> <url> <token|-> [ca.pem] < events.json
// With ca.pem the endpoint is served over TLS by a certificate that CA signed (https:// URLs for http/proto).
// events.json: {"resource": {attr: value}, "records": [{"body": "...", "eventName": "...", "attributes": {...}}]}
// Exits 0 only when every export the SDK made succeeded; prints one JSON summary line.
'use strict';

const fs = require('fs');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const EXPORTERS = {
  grpc: '@opentelemetry/exporter-logs-otlp-grpc',
  http: '@opentelemetry/exporter-logs-otlp-http', // OTLP/JSON
  proto: '@opentelemetry/exporter-logs-otlp-proto', // OTLP/HTTP protobuf
};

// Wraps the real exporter to learn the outcome of each export (the SDK itself only logs failures).
class CheckedExporter {
  constructor(inner) {
    this.inner = inner;
    this.failures = [];
    this.exported = 0;
  }
  export(records, done) {
    this.inner.export(records, (result) => {
      if (result.code === 0) this.exported += records.length;
      else this.failures.push(String(result.error || result.code));
      done(result);
    });
  }
  forceFlush() { return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve(); }
  shutdown() { return this.inner.shutdown(); }
}

async function main() {
  const [protocol, url, token, caFile] = process.argv.slice(2);
  const { OTLPLogExporter } = require(EXPORTERS[protocol]);
  const events = JSON.parse(fs.readFileSync(0, 'utf8'));
  const headers = token && token !== '-' ? { Authorization: `Bearer ${token}` } : {};
  const options = protocol === 'grpc' ? { url } : { url, headers };
  if (protocol === 'grpc' && token && token !== '-') {
    const { Metadata } = require('@grpc/grpc-js');
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    options.metadata = metadata;
  }
  if (caFile) {
    const ca = fs.readFileSync(caFile);
    if (protocol === 'grpc') {
      options.credentials = require('@grpc/grpc-js').credentials.createSsl(ca);
    } else {
      options.httpAgentOptions = { ca };
    }
  }
  const exporter = new CheckedExporter(new OTLPLogExporter(options));
  const provider = new LoggerProvider({
    resource: resourceFromAttributes(events.resource),
    processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 100, scheduledDelayMillis: 50 })],
  });
  const logger = provider.getLogger('procsight-js-test', '1.0.0');
  for (const record of events.records) {
    logger.emit({ body: record.body, eventName: record.eventName, attributes: record.attributes,
                  severityNumber: 9, severityText: 'INFO' });
  }
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify({ exported: exporter.exported, failures: exporter.failures }));
  process.exit(exporter.failures.length === 0 && exporter.exported === events.records.length ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
