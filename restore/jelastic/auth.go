package jelastic

import (
	"context"
	"fmt"
	"net/url"
)

// SignIn opens a session with a login (e-mail) and password and returns
// the session string, which New accepts in place of a token. The client's
// own token is not sent. A refused login is an *Error for which IsAuth is
// true.
func (c *Client) SignIn(ctx context.Context, login, password string) (string, error) {
	var w struct {
		Session flexString `json:"session"`
	}
	anon := *c
	anon.token = ""
	err := anon.Do(ctx, Request{
		Method:     "users.authentication.Signin",
		Params:     url.Values{"login": {login}, "password": {password}},
		Idempotent: true,
	}, &w)
	if err != nil {
		return "", err
	}
	if w.Session == "" {
		return "", fmt.Errorf("jelastic users.authentication.Signin: response has no session")
	}
	return string(w.Session), nil
}

// SignOut ends the client's session. Personal access tokens are not
// affected by it.
func (c *Client) SignOut(ctx context.Context) error {
	return c.Do(ctx, Request{Method: "users.authentication.Signout", Params: url.Values{}, Idempotent: true}, nil)
}

// GetUserInfo returns the account the token belongs to; it is the cheapest
// way to check that a token is valid.
func (c *Client) GetUserInfo(ctx context.Context) (*UserInfo, error) {
	var w wireUserInfo
	err := c.Do(ctx, Request{Method: "users.account.GetUserInfo", Params: url.Values{}, Idempotent: true}, &w)
	if err != nil {
		return nil, err
	}
	return &UserInfo{UID: int(w.UID), Email: string(w.Email), Name: string(w.Name)}, nil
}
