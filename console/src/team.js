// The organization's people, for names and for assignment; loaded once per page view.
import { useEffect, useMemo, useState } from "preact/hooks";
import { all } from "./api.js";
import { paths } from "./paths.js";
import { can } from "./session.js";

let loading = null;

export function loadTeam() {
  if (!can("users", "read")) return Promise.resolve([]);
  loading = loading || all(paths.users.list).catch(() => []);
  return loading;
}

export function forgetTeam() {
  loading = null;
}

// The team for a page: the people (for assignment menus) and their names by id.
export function useTeam() {
  const [team, setTeam] = useState([]);
  useEffect(() => {
    loadTeam().then(setTeam);
  }, []);
  const names = useMemo(() => Object.fromEntries(team.map((user) => [user.id, user.full_name])), [team]);
  return { team, names };
}
