/**
 * Herald's monotonic counters (Prometheus `counter`s, never reset): every count is stored per
 * notification type as one JSON object of named counts, and these are the names. A name is its
 * family and its labels, `/`-separated: channels, statuses, providers and classes are identifiers
 * that never hold a `/`.
 */

/** Provider answers that were errors, by class (`SendResult` kinds other than `sent`). */
export const ERROR_CLASSES = ['retryable', 'permanent', 'unknown'] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** One provider's error answer to one attempt. */
export interface ProviderError {
  provider: string;
  class: ErrorClass;
}

export const ACCEPTED = 'accepted';
export const DELIVERIES = 'deliveries';
export const PROVIDER_ERRORS = 'provider_errors';

/**
 * `n` more of the count named `key` (a name below) of notification type `type`: what a write found
 * to count, held until it is added (a provider answer's counts wait for its batch's commit).
 */
export interface CountIncrement {
  type: string;
  key: string;
  n: number;
}

/** The count of deliveries of a channel that entered a status. */
export const deliveryCount = (channel: string, status: string): string =>
  `${DELIVERIES}/${channel}/${status}`;

/** The count of a provider's error answers of a class on a channel. */
export const providerErrorCount = (channel: string, error: ProviderError): string =>
  `${PROVIDER_ERRORS}/${channel}/${error.provider}/${error.class}`;

/** The counters over every database, summed, as `/metrics` shows them (sorted by their labels). */
export interface CounterTotals {
  deliveries: { channel: string; type: string; status: string; value: number }[];
  accepted: { type: string; value: number }[];
  providerErrors: { channel: string; provider: string; class: string; value: number }[];
}

/**
 * Adds up the counts of every database's rows into the three families: deliveries by channel, type
 * and status, notifications by type, provider errors by channel, provider and class (all types).
 */
export function sumCounters(
  rows: readonly { type: string; counts: Record<string, number> }[],
): CounterTotals {
  const sums = new Map<string, number>();
  const add = (labels: string[], value: number) => {
    const key = JSON.stringify(labels);
    sums.set(key, (sums.get(key) ?? 0) + value);
  };
  for (const { type, counts } of rows) {
    for (const [name, value] of Object.entries(counts)) {
      const [family, ...labels] = name.split('/');
      if (family === DELIVERIES && labels.length === 2)
        add([DELIVERIES, labels[0] ?? '', type, labels[1] ?? ''], value);
      else if (family === ACCEPTED && labels.length === 0) add([ACCEPTED, type], value);
      else if (family === PROVIDER_ERRORS && labels.length === 3) add([PROVIDER_ERRORS, ...labels], value);
    }
  }
  const totals: CounterTotals = { deliveries: [], accepted: [], providerErrors: [] };
  for (const [key, value] of [...sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const [family, first = '', second = '', third = ''] = JSON.parse(key) as string[];
    if (family === DELIVERIES) totals.deliveries.push({ channel: first, type: second, status: third, value });
    else if (family === ACCEPTED) totals.accepted.push({ type: first, value });
    else totals.providerErrors.push({ channel: first, provider: second, class: third, value });
  }
  return totals;
}
