/// A file's name as the client gave it, made safe to store, log and send back in a
/// `Content-Disposition` header: the last path segment only, characters other than letters,
/// digits, `.`, `-`, `_`, space and parentheses replaced by `_`, no leading dots, at most 255
/// bytes. It never becomes part of an object key (keys are `org/<uuid>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

const MAX_FILE_NAME_BYTES: usize = 255;
const UNNAMED: &str = "file";

impl FileName {
    /// Sanitise; a name with nothing left becomes `file`.
    pub fn sanitise(raw: &str) -> Self {
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let mut name = String::with_capacity(last.len());
        for c in last.chars() {
            let keep = c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')');
            let c = if keep { c } else { '_' };
            if name.len() + c.len_utf8() > MAX_FILE_NAME_BYTES {
                break;
            }
            name.push(c);
        }
        let name = name.trim().trim_start_matches('.').trim();
        if name.is_empty() {
            Self(UNNAMED.to_owned())
        } else {
            Self(name.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::FileName;

    #[test]
    fn paths_controls_and_dots_are_removed() {
        assert_eq!(FileName::sanitise("../../etc/passwd").as_str(), "passwd");
        assert_eq!(
            FileName::sanitise("C:\\Users\\me\\report (1).pdf").as_str(),
            "report (1).pdf"
        );
        assert_eq!(
            FileName::sanitise("a\r\nb;\"c\".txt").as_str(),
            "a__b__c_.txt"
        );
        assert_eq!(FileName::sanitise("...hidden").as_str(), "hidden");
        assert_eq!(FileName::sanitise("  ").as_str(), "file");
        assert_eq!(FileName::sanitise("données.csv").as_str(), "données.csv");
        assert!(FileName::sanitise(&"é".repeat(300)).as_str().len() <= 255);
    }
}
