//! `app.options` for the reference systems whose only option is `bugs`, a list of planted
//! bugs by name (raft-kv, pb-kv): checking it and reading it.

/// The bug names `options.bugs` lists (names that are not strings are left out: see [`check`]).
pub fn names(options: &toml::Table) -> Vec<&str> {
    options.get("bugs").and_then(|v| v.as_array()).map_or(Vec::new(), |a| a.iter().filter_map(|b| b.as_str()).collect())
}

/// Every problem with `options` for application `app`, which plants the bugs `known`: an
/// option other than `bugs`, a `bugs` that is not a list, an entry that is not a name, an
/// unknown name (`parse`'s error). Each names the known bugs.
pub fn check(
    app: &str,
    known: &[&str],
    options: &toml::Table,
    parse: impl Fn(&str) -> Result<(), String>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (k, v) in options {
        match (k.as_str(), v.as_array()) {
            ("bugs", Some(list)) => {
                for b in list {
                    let problem = match b.as_str() {
                        Some(name) => parse(name).err(),
                        None => Some(format!("{b} is not a bug name; {app} plants: {}", known.join(", "))),
                    };
                    problems.extend(problem.map(|p| (k.clone(), p)));
                }
            }
            ("bugs", None) => problems.push((k.clone(), format!("{v} is not a list of bug names"))),
            _ => problems.push((k.clone(), format!("unknown option; {app} knows: bugs"))),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> Result<(), String> {
        if name == "slow" {
            Ok(())
        } else {
            Err(format!("unknown bug {name:?}; demo plants: slow"))
        }
    }

    #[test]
    fn every_problem_is_named() {
        let options: toml::Table = toml::from_str("bugs = [\"slow\", \"fast\", 3]\nspeed = 1").unwrap();
        let problems = check("demo", &["slow"], &options, parse);
        assert_eq!(
            problems,
            vec![
                ("bugs".to_owned(), "unknown bug \"fast\"; demo plants: slow".to_owned()),
                ("bugs".to_owned(), "3 is not a bug name; demo plants: slow".to_owned()),
                ("speed".to_owned(), "unknown option; demo knows: bugs".to_owned()),
            ]
        );
        assert_eq!(names(&options), vec!["slow", "fast"]);
        let bad: toml::Table = toml::from_str("bugs = \"slow\"").unwrap();
        assert_eq!(check("demo", &["slow"], &bad, parse)[0].1, "\"slow\" is not a list of bug names");
    }
}
