/**
 * Runs `work` over every item, at most `concurrency` at a time, each item once, started in order. Resolves
 * when every item is done; rejects with the first failure (the other workers still finish the items they
 * take, as `Promise.all` over the workers does).
 */
export async function eachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) await work(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
