//! ERC-7201 storage layouts and the rule an upgrade must follow: every namespace of the deployed implementation
//! is still there, its members keep their order, names and types, new members are only appended, and the
//! structs it stores are unchanged. (Appending to a struct kept only as a mapping value would be safe too; it
//! is refused here all the same, which errs on the safe side.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use x402_bindings::Contract;

use super::error::{Describe, Error, Result};

/// A member or struct field: name and Solidity type.
pub type Field = (String, String);

/// One namespace: its struct's members and the structs they use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// The namespace struct's members, in order.
    pub members: Vec<Field>,
    /// The structs the members use, by name.
    pub structs: BTreeMap<String, Vec<Field>>,
}

/// A contract's namespaces by ERC-7201 id.
pub type Namespaces = BTreeMap<String, Namespace>;

/// The layouts of the contracts this binary deploys.
pub fn bundled(contract: Contract) -> Result<Namespaces> {
    let mut all: BTreeMap<String, Namespaces> = serde_json::from_str(x402_bindings::STORAGE_LAYOUTS)
        .describe(|| "the bundled storage layouts".into())?;
    all.remove(contract.name())
        .ok_or_else(|| Error::Refused(format!("no storage layout bundled for {contract}")))
}

/// Why `new` cannot replace `old`, or `None` if it can.
pub fn incompatibility(old: &Namespaces, new: &Namespaces) -> Option<String> {
    for (id, before) in old {
        let Some(after) = new.get(id) else {
            return Some(format!("namespace {id} is gone"));
        };
        for (index, was) in before.members.iter().enumerate() {
            match after.members.get(index) {
                None => return Some(format!("namespace {id}: member `{}` was removed", was.0)),
                Some(is) if is != was => {
                    return Some(format!(
                        "namespace {id}: member {index} was `{} {}`, is `{} {}`",
                        was.1, was.0, is.1, is.0
                    ));
                }
                Some(_) => {}
            }
        }
        for (name, fields) in &before.structs {
            if after.structs.get(name).is_some_and(|now| now != fields) {
                return Some(format!("namespace {id}: struct {name} changed"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn field(name: &str, ty: &str) -> Field {
        (name.to_owned(), ty.to_owned())
    }

    fn layout(members: Vec<Field>) -> Namespaces {
        let mut structs = BTreeMap::new();
        structs.insert("I.Entry".to_owned(), vec![field("a", "uint256")]);
        BTreeMap::from([("x402.storage.T".to_owned(), Namespace { members, structs })])
    }

    #[test]
    fn appending_is_compatible_and_anything_else_is_not() {
        let old = layout(vec![field("a", "uint256"), field("b", "mapping(address => bool)")]);
        assert_eq!(incompatibility(&old, &old), None);
        let appended =
            layout(vec![field("a", "uint256"), field("b", "mapping(address => bool)"), field("c", "uint64")]);
        assert_eq!(incompatibility(&old, &appended), None);

        let swapped = layout(vec![field("b", "mapping(address => bool)"), field("a", "uint256")]);
        assert!(incompatibility(&old, &swapped).unwrap().contains("member 0 was `uint256 a`"));
        let retyped = layout(vec![field("a", "uint128"), field("b", "mapping(address => bool)")]);
        assert!(incompatibility(&old, &retyped).is_some());
        let removed = layout(vec![field("a", "uint256")]);
        assert!(incompatibility(&old, &removed).unwrap().contains("`b` was removed"));
        assert!(incompatibility(&old, &Namespaces::new()).unwrap().contains("is gone"));
        let mut struct_changed = old.clone();
        struct_changed
            .get_mut("x402.storage.T")
            .unwrap()
            .structs
            .insert("I.Entry".into(), vec![field("a", "uint8")]);
        assert!(incompatibility(&old, &struct_changed).unwrap().contains("struct I.Entry changed"));
    }

    #[test]
    fn every_deployed_contract_has_a_bundled_layout_with_its_own_namespace() {
        for contract in Contract::ALL {
            let layout = bundled(contract).unwrap();
            assert!(layout.contains_key(&format!("x402.storage.{contract}")), "{contract}");
            assert!(layout.contains_key("openzeppelin.storage.AccessControl"), "{contract}");
        }
    }
}
