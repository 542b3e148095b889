// The text summary of an HTTP API dataflow's `audex run` (README "Send to an HTTP endpoint"):
// per delivered snapshot, the messages, requests and acknowledgements, and the triggers.
import type { InvocationResult } from '../../run/invoke.js';

export function formatHttpSummary(result: InvocationResult): string {
  const lines = result.runs.length
    ? [`dataflow ${result.dataflowId} at ${result.at}:`]
    : [`dataflow ${result.dataflowId}: nothing to deliver at ${result.at} (see \`audex plan\`)`];
  for (const r of result.runs) {
    const c = r.counts as unknown as Record<string, number>;
    lines.push(`  ${r.status.padEnd(7)} run ${r.runId} snapshot ${r.snapshotId ?? '-'}${r.note ? ` (${r.note})` : ''}`);
    if (r.status === 'success' || c['requests']) {
      lines.push(
        `    ${c['messages']} message(s) in ${c['requests']} request(s): ${c['acknowledged']} acknowledged, ${c['deadLetters']} dead-lettered, ${c['retries']} retries`,
      );
      lines.push(
        `    triggers: entered ${c['entered']}, exited ${c['exited']}, identity ${c['identity']}, attribute ${c['attribute']}`,
      );
    }
    if (r.error) lines.push(`    ${r.error.split('\n').join('\n    ')}`);
  }
  return lines.join('\n');
}
