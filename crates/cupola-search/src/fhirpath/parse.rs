//! Parser for the FHIRPath subset used by the R4 search parameter expressions:
//! paths, `|`, `where(...)`, `exists()`, `as`/`is`, `.as(X)`, `.ofType(X)`,
//! `extension('url')`, `resolve()`, `[n]`, `=`, `!=`, `and`, `or`, literals.

use super::Expr;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Pipe,
    Eq,
    Ne,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(tok) = punctuation(c) {
            out.push(tok);
            i += 1;
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Ne);
                i += 2
            }
            '\'' => out.push(Tok::Str(string_literal(&chars, &mut i)?)),
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
                {
                    i += 1;
                }
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

/// The token of a one-character punctuation mark.
fn punctuation(c: char) -> Option<Tok> {
    Some(match c {
        '.' => Tok::Dot,
        '(' => Tok::LParen,
        ')' => Tok::RParen,
        '[' => Tok::LBracket,
        ']' => Tok::RBracket,
        '|' => Tok::Pipe,
        ',' => Tok::Comma,
        '=' => Tok::Eq,
        _ => return None,
    })
}

/// The `'…'` literal starting at `*i` (`\` escapes the next character); `*i` ends
/// past its closing quote.
fn string_literal(chars: &[char], i: &mut usize) -> Result<String, String> {
    let mut lit = String::new();
    *i += 1;
    loop {
        match chars.get(*i) {
            None => return Err("unterminated string".into()),
            Some('\'') => break,
            Some('\\') => {
                if let Some(n) = chars.get(*i + 1) {
                    lit.push(*n);
                }
                *i += 2;
            }
            Some(ch) => {
                lit.push(*ch);
                *i += 1;
            }
        }
    }
    *i += 1;
    Ok(lit)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Parses an expression.
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = Parser { toks: lex(s)?, pos: 0 };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} in '{s}'", p.toks[p.pos]));
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(k)) if k == kw)
    }

    fn expect(&mut self, t: Tok) -> Result<(), String> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {t:?}, found {:?}", self.peek()))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(s)) => {
                self.pos += 1;
                Ok(s.clone())
            }
            t => Err(format!("expected an identifier, found {t:?}")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.equality()?;
        while self.peek_kw("and") {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.equality()?));
        }
        Ok(e)
    }

    fn equality(&mut self) -> Result<Expr, String> {
        let e = self.union()?;
        let negate = match self.peek() {
            Some(Tok::Eq) => false,
            Some(Tok::Ne) => true,
            _ => return Ok(e),
        };
        self.pos += 1;
        Ok(Expr::Eq(Box::new(e), Box::new(self.union()?), negate))
    }

    fn union(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.type_op()?];
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            parts.push(self.type_op()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Union(parts) })
    }

    fn type_op(&mut self) -> Result<Expr, String> {
        let mut e = self.postfix()?;
        loop {
            if self.peek_kw("as") {
                self.pos += 1;
                e = Expr::As(Box::new(e), self.ident()?);
            } else if self.peek_kw("is") {
                self.pos += 1;
                e = Expr::Is(Box::new(e), self.ident()?);
            } else {
                return Ok(e);
            }
        }
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.term()?;
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    let name = self.ident()?;
                    e = self.invocation(e, name)?;
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    let n = match self.toks.get(self.pos) {
                        Some(Tok::Num(n)) => n.parse::<usize>().map_err(|e| e.to_string())?,
                        t => return Err(format!("expected an index, found {t:?}")),
                    };
                    self.pos += 1;
                    self.expect(Tok::RBracket)?;
                    e = Expr::Index(Box::new(e), n);
                }
                _ => return Ok(e),
            }
        }
    }

    /// `base.name` or `base.name(args)`.
    fn invocation(&mut self, base: Expr, name: String) -> Result<Expr, String> {
        if self.peek() != Some(&Tok::LParen) {
            return Ok(Expr::Member(Box::new(base), name));
        }
        self.pos += 1;
        let mut args = Vec::new();
        if self.peek() != Some(&Tok::RParen) {
            args.push(self.or()?);
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                args.push(self.or()?);
            }
        }
        self.expect(Tok::RParen)?;
        Ok(Expr::Func(Box::new(base), name, args))
    }

    fn term(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.or()?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Str(s))
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Expr::Str(n))
            }
            Some(Tok::Ident(id)) => {
                self.pos += 1;
                match id.as_str() {
                    "true" => Ok(Expr::Bool(true)),
                    "false" => Ok(Expr::Bool(false)),
                    "$this" => Ok(Expr::This),
                    _ if self.peek() == Some(&Tok::LParen) => self.invocation(Expr::This, id),
                    _ if id.starts_with(|c: char| c.is_ascii_uppercase()) => Ok(Expr::TypeRoot(id)),
                    _ => Ok(Expr::Member(Box::new(Expr::This), id)),
                }
            }
            t => Err(format!("unexpected {t:?}")),
        }
    }
}
