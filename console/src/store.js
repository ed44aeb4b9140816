// A value that components can watch: the small state container the console needs.
import { useEffect, useState } from "preact/hooks";

export function store(initial) {
  const watchers = new Set();
  return {
    value: initial,
    set(next) {
      this.value = next;
      for (const watcher of watchers) watcher(next);
    },
    watch(watcher) {
      watchers.add(watcher);
      return () => watchers.delete(watcher);
    },
  };
}

export function useStore(source) {
  const [value, setValue] = useState(source.value);
  useEffect(() => {
    setValue(source.value);
    return source.watch(setValue);
  }, [source]);
  return value;
}
