#[path = "../domain/stations.rs"]
mod stations;
use stations::*;

fn main() {
    let _ = flow! {
        name: "stations",
        stages: {
            readings = source!(Reading => from_iter(readings()));
            cooled = transform!(Reading -> Reading => map(|r: Reading| r), parallel: 2);
            again = transform!(Reading -> Reading => filter(|r: &Reading| r.celsius > 100.0));
            out = sink!(Reading => console());
        },
        topology: {
            readings |> cooled |> again; cooled |> out; cooled <| again;
        }
    };
}
