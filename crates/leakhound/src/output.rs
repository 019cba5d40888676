//! Human-readable formatting: sizes, counts, distances and aligned tables.

/// A size in decimal units, as DevTools shows them: `512 B`, `1.5 kB`, `117.2 MB`.
pub fn size(bytes: u64) -> String {
    heapsnap::findings::human_size(bytes)
}

/// A size change with its sign: `+1.5 kB`, `-3 B`.
pub fn signed_size(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", size(n.unsigned_abs()))
}

/// A count and what it counts: `1 cluster`, `1,500 clusters`.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    heapsnap::findings::human_count(n)
}

/// A distance as DevTools shows it: `−` for unreached and system objects.
pub fn distance(d: i32) -> String {
    if (0..heapsnap::analysis::BASE_SYSTEM_DISTANCE).contains(&d) {
        d.to_string()
    } else {
        "-".to_owned()
    }
}

/// Writes rows as a table: the first column left-aligned, the others right-aligned.
pub fn table(
    out: &mut impl std::io::Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn std::io::Write, cells: &[&str]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str("  ");
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, header)?;
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    Ok(())
}

/// Cuts a long class name (inferred `{a, b, …}` names run to 120 characters).
pub fn shorten(name: &str, max: usize) -> String {
    let one_line = name.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// A retaining path on one line: `global → handleMap (Map) → […] (CallContext)`. The step at
/// `mark` is put in brackets; runs of one link (`_idleNext (Timeout)`) are counted, not
/// repeated. V8's internal stores (a Map's table, an object's property array) are left out
/// and what is reached through them shown as an entry (`[…]`). `from` names where a path that
/// does not start at the root starts (`server.js (module scope)`).
pub fn path(steps: &[heapsnap::view::Step], mark: Option<usize>, from: Option<&str>) -> String {
    let store = |i: usize| {
        let ty = steps[i].node.ty.as_str();
        i + 1 < steps.len() && mark != Some(i) && (ty == "array" || ty == "hidden")
    };
    let label = |i: usize| {
        let step = &steps[i];
        let class = shorten(
            heapsnap::graph::display_class(step.node.class.trim_end()).as_ref(),
            40,
        );
        let internal_entry = step.edge_type == "internal"
            && step
                .edge
                .trim_start_matches("(internal ")
                .trim_end_matches(')')
                .bytes()
                .all(|b| b.is_ascii_digit());
        let edge = if internal_entry || (i > 0 && store(i - 1) && step.edge_type != "property") {
            "[…]".to_owned()
        } else {
            step.edge.clone()
        };
        // The root's edges (`2`, `[1]`) say nothing; show the node only. A function's scope is
        // what its variables live in: `get (Function) → (scope) → stringToPath (Function)`.
        let text = if i == 0 && from.is_none() {
            class
        } else if step.edge == "(internal context)" {
            "(scope)".to_owned()
        } else {
            format!("{edge} ({class})")
        };
        if mark == Some(i) {
            format!("[{text}]")
        } else {
            text
        }
    };
    let same = |i: usize, j: usize| {
        steps[i].edge == steps[j].edge && steps[i].node.class == steps[j].node.class
    };
    let mut parts: Vec<String> = from.map(str::to_owned).into_iter().collect();
    let mut i = 0;
    while i < steps.len() {
        if store(i) {
            i += 1;
            continue;
        }
        let mut run = 1;
        while i + run < steps.len() && same(i, i + run) && mark != Some(i + run) {
            run += 1;
        }
        if run > 2 {
            parts.push(format!("{} ×{run}", label(i)));
        } else {
            parts.extend((i..i + run).map(label));
        }
        i += run;
    }
    parts.join(" → ")
}

/// A position as the text reports print it: `/srv/app/dist/server.js:42:7`, and where the
/// script's source map says it came from when it has one:
/// `/srv/app/dist/server.js:42:7 (src/orders.ts:30:5)`.
pub fn location(l: &heapsnap::code::SourceLocation) -> String {
    let generated = match &l.script {
        Some(script) => format!("{script}:{}:{}", l.line, l.column),
        None => format!("script {} line {}:{}", l.script_id, l.line, l.column),
    };
    position(generated, l.original.as_ref())
}

/// A generated position (as text) with its original beside it, if any.
pub fn position(generated: String, original: Option<&heapsnap::code::Original>) -> String {
    match original {
        Some(o) => format!("{generated} ({})", original_text(o)),
        None => generated,
    }
}

/// `src/orders.ts:30:5`: the source relative to the current directory when it is inside it
/// (where people run leakhound from and open files from: short, and a terminal or editor
/// opens it as it is), else as the JSON has it (an absolute path, or the map's URL).
pub fn original_text(o: &heapsnap::code::Original) -> String {
    original_from(o, std::env::current_dir().ok().as_deref())
}

/// [`original_text`] with `cwd` the current directory. From `/` (an MCP server started by a
/// desktop client, a container, a service) paths stay absolute: `work/app/src/a.ts` would
/// read as relative to wherever its reader is.
fn original_from(o: &heapsnap::code::Original, cwd: Option<&std::path::Path>) -> String {
    let source = cwd
        .filter(|cwd| cwd.parent().is_some())
        .and_then(|cwd| std::path::Path::new(&o.source).strip_prefix(cwd).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .map_or_else(
            || o.source.clone(),
            |rel| rel.to_string_lossy().into_owned(),
        );
    format!("{source}:{}:{}", o.line, o.column)
}

/// Checks, before any work, that a file can be written at `path`: not a directory, in a
/// directory that exists.
pub fn check_file_path(path: &std::path::Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("{} is a directory; give a file name", path.display());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.is_dir()
    {
        anyhow::bail!("{}: no such directory", parent.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_read_like_devtools() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1500), "1.5 kB");
        assert_eq!(size(117_200_000), "117.2 MB");
        assert_eq!(size(999_999), "1.0 MB");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(distance(-5), "-");
        assert_eq!(distance(100_000_001), "-");
        assert_eq!(distance(3), "3");
    }

    #[test]
    fn originals_are_relative_to_the_current_directory_except_the_root() {
        let o = heapsnap::code::Original {
            source: "/work/app/src/session.ts".to_owned(),
            line: 26,
            column: 8,
        };
        let cwd = |p: &'static str| Some(std::path::Path::new(p));
        assert_eq!(original_from(&o, cwd("/work/app")), "src/session.ts:26:8");
        assert_eq!(
            original_from(&o, cwd("/srv")),
            "/work/app/src/session.ts:26:8"
        );
        assert_eq!(original_from(&o, cwd("/")), "/work/app/src/session.ts:26:8");
        assert_eq!(original_from(&o, None), "/work/app/src/session.ts:26:8");
        let url = heapsnap::code::Original {
            source: "webpack:///./src/session.ts".to_owned(),
            ..o
        };
        assert_eq!(
            original_from(&url, cwd("/")),
            "webpack:///./src/session.ts:26:8"
        );
        assert_eq!(
            position("/work/app/dist/server.js:39:20".into(), Some(&url)),
            "/work/app/dist/server.js:39:20 (webpack:///./src/session.ts:26:8)"
        );
        assert_eq!(position("a.js:1:1".into(), None), "a.js:1:1");
    }
}
